/**
 * Rules for creating and editing `commands` items, as plain functions. The hook resolves the
 * facts that need I/O (the sender's role names, the device row) and hands them in.
 *
 * The Core tier cannot express per-field permissions, so field-level rules live here: a sender
 * chooses the device, the text, an optional hex payload and an expiry; everything else belongs to
 * the lifecycle and is written only by the extension itself (no accountability).
 */
import type { CommandConfig } from './config';
import { allowedFor, parseCommand } from './parse';

export class CommandRuleError extends Error {
  override name = 'CommandRuleError';
  constructor(
    message: string,
    /** 'invalid' → 400 (bad input); 'forbidden' → 403 (the sender may not do this). */
    readonly kind: 'invalid' | 'forbidden' = 'invalid',
  ) {
    super(message);
  }
}

/** Who is writing: null for the extension / system code (no accountability). */
export interface Sender {
  user: string | null;
  admin: boolean;
  roleNames: readonly string[];
}

/** Fields a sender may set when creating a command. */
export const SENDER_FIELDS = ['device', 'text', 'payload_hex', 'expires_at'] as const;
/** Fields only the lifecycle writes. */
export const LIFECYCLE_FIELDS = [
  'status',
  'response',
  'error',
  'queued_at',
  'sent_at',
  'answered_at',
  'attempts',
  'instance_id',
  'created_at',
  'user_created',
  'cancelled_by',
  'retried_by',
] as const;

export function isSender(sender: Sender, config: Pick<CommandConfig, 'senderRoles'>): boolean {
  if (sender.admin) return true;
  const allowed = new Set(config.senderRoles.map((r) => r.toLowerCase()));
  return sender.roleNames.some((r) => allowed.has(r.toLowerCase()));
}

export function assertMaySend(sender: Sender | null, config: Pick<CommandConfig, 'senderRoles'>): void {
  if (sender === null) return;
  if (!sender.user) throw new CommandRuleError('Sign in to send commands.', 'forbidden');
  if (!isSender(sender, config)) {
    throw new CommandRuleError(
      `Your role may not send commands (allowed: Admin, ${config.senderRoles.join(', ')}).`,
      'forbidden',
    );
  }
}

/** The device reference in a create payload: a primary key, or `{ id }` as the Studio may send. */
export function deviceKey(value: unknown): string | number | null {
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const id = (value as Record<string, unknown>).id;
    if (keys.length === 1 && (typeof id === 'string' || typeof id === 'number')) return id;
  }
  return null;
}

/** What the hook found about the referenced device. */
export interface DeviceFacts {
  exists: boolean;
  enabled: boolean;
  label: string;
}

/** Interprets a device row whatever its enable flag is called (`enabled`, `allowed` or `blocked`). */
export function deviceEnabled(row: Record<string, unknown>): boolean {
  if ('enabled' in row && row.enabled === false) return false;
  if ('allowed' in row && row.allowed === false) return false;
  if ('blocked' in row && row.blocked === true) return false;
  return true;
}

const PRINTABLE = /^[\x20-\x7e]*$/;

/** Bytes as characters (no Buffer: these rules may also run in the browser). */
function hexToLatin1(hex: string): string {
  let out = '';
  for (let i = 0; i + 1 < hex.length; i += 2) out += String.fromCharCode(Number.parseInt(hex.slice(i, i + 2), 16));
  return out;
}

export function normalizeText(value: unknown, maxBytes: number): string {
  if (typeof value !== 'string') throw new CommandRuleError('Command text is required.');
  const text = value.trim();
  if (text.length === 0) throw new CommandRuleError('Command text is required.');
  if (!PRINTABLE.test(text)) {
    const bad = [...text].find((c) => !PRINTABLE.test(c)) ?? '';
    const code = bad.codePointAt(0)?.toString(16).padStart(2, '0') ?? '?';
    throw new CommandRuleError(
      `Command text must be printable ASCII (found character U+${code.toUpperCase()}); send binary data as a hex payload.`,
    );
  }
  if (text.length > maxBytes) {
    throw new CommandRuleError(`Command text is ${text.length} bytes; the limit is ${maxBytes}.`);
  }
  return text;
}

/** Optional hex payload: whitespace ignored, even number of hex digits, stored lowercase. */
export function normalizePayloadHex(value: unknown, maxBytes: number): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new CommandRuleError('Payload must be a hex string.');
  const hex = value.replace(/\s+/g, '').toLowerCase();
  if (hex.length === 0) return null;
  if (!/^[0-9a-f]+$/.test(hex)) throw new CommandRuleError('Payload must contain only hex digits (0-9, a-f).');
  if (hex.length % 2 !== 0) throw new CommandRuleError('Payload must have an even number of hex digits (whole bytes).');
  if (hex.length / 2 > maxBytes) {
    throw new CommandRuleError(`Payload is ${hex.length / 2} bytes; the limit is ${maxBytes}.`);
  }
  return hex;
}

export function normalizeExpiry(value: unknown, now: number, ttlMs: number): string {
  if (value === undefined || value === null || value === '') return new Date(now + ttlMs).toISOString();
  const ms = value instanceof Date ? value.getTime() : typeof value === 'number' ? value : Date.parse(String(value));
  if (Number.isNaN(ms)) throw new CommandRuleError('Expiry is not a valid date.');
  if (ms <= now) throw new CommandRuleError('Expiry must be in the future.');
  return new Date(ms).toISOString();
}

/** Refuses lifecycle fields set by a sender; `status: 'pending'` (the default) is harmless. */
export function assertNoLifecycleFields(payload: Record<string, unknown>): void {
  for (const field of LIFECYCLE_FIELDS) {
    const v = payload[field];
    if (v === undefined || v === null) continue;
    if (field === 'status' && v === 'pending') continue;
    throw new CommandRuleError(`The field "${field}" is set by the system and cannot be written.`, 'forbidden');
  }
}

export interface CreateInput {
  payload: Record<string, unknown>;
  sender: Sender | null;
  device: DeviceFacts;
  now: number;
  config: Pick<CommandConfig, 'senderRoles' | 'maxBytes' | 'ttlMs' | 'allowRules'>;
}

/**
 * What the command will make the device do, checked against the sender's rights: the text must
 * parse (for everyone), and a non-admin's text — and hex payload, which is what the device gets
 * when present — must be a printable command on the allow-list. Used on create, retry and cancel.
 */
export function assertMayCommand(
  text: string,
  payloadHex: string | null,
  sender: Sender | null,
  config: Pick<CommandConfig, 'allowRules'>,
): void {
  const parsed = parseCommand(text);
  if (!parsed.ok) throw new CommandRuleError(`"${text}" is not a command: ${parsed.error}.`);
  if (sender === null || sender.admin) return;
  const candidates: Array<[string, ReturnType<typeof parseCommand>]> = [[`"${text}"`, parsed]];
  if (payloadHex !== null) candidates.push(['The hex payload', parseCommand(hexToLatin1(payloadHex))]);
  for (const [shown, p] of candidates) {
    if (!p.ok) throw new CommandRuleError(`${shown} is not a command a non-admin may send (${p.error}).`, 'forbidden');
    const permission = allowedFor(p.command, config.allowRules);
    if (!permission.allowed) {
      throw new CommandRuleError(`${shown} needs the Admin role: ${permission.reason}.`, 'forbidden');
    }
  }
}

/** Validates a create payload and returns it normalized, with the lifecycle's initial values. */
export function validateCreate({ payload, sender, device, now, config }: CreateInput): Record<string, unknown> {
  assertMaySend(sender, config);
  if (sender !== null) assertNoLifecycleFields(payload);
  if (deviceKey(payload.device) === null) throw new CommandRuleError('Choose an existing device.');
  if (!device.exists) throw new CommandRuleError(`Device ${device.label} does not exist.`);
  if (!device.enabled)
    throw new CommandRuleError(`Device ${device.label} is disabled; enable it before sending commands.`);
  const text = normalizeText(payload.text, config.maxBytes);
  const payloadHex = normalizePayloadHex(payload.payload_hex, config.maxBytes);
  const expiresAt = normalizeExpiry(payload.expires_at, now, config.ttlMs);
  assertMayCommand(text, payloadHex, sender, config);
  return {
    ...payload,
    device: deviceKey(payload.device),
    text,
    payload_hex: payloadHex,
    expires_at: expiresAt,
    status: 'pending',
    attempts: 1,
    ...(sender === null ? {} : { response: null, error: null, instance_id: null }),
  };
}

/** Fields nobody edits through the API once a command exists (cancel/retry go through endpoints). */
export const IMMUTABLE_FIELDS = [...SENDER_FIELDS, ...LIFECYCLE_FIELDS] as const;

export function assertUpdateAllowed(payload: Record<string, unknown>, sender: Sender | null): void {
  if (sender === null) return;
  const touched = IMMUTABLE_FIELDS.filter((f) => f in payload);
  if (touched.length > 0) {
    throw new CommandRuleError(
      `Commands cannot be edited (${touched.join(', ')}); cancel it and create a new one, or use retry.`,
      'forbidden',
    );
  }
}
