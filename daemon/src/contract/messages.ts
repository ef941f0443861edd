/**
 * Message shapes carried on the Redis streams, validated with zod on the reading side.
 *
 * Stream entries are flat field/value lists. Every message here is encoded to such a list by an
 * `encode*` function and read back by a `decode*` function, so writers and readers cannot drift.
 * Times are epoch milliseconds as decimal strings; raw device bytes travel as binary values.
 */
import { z } from 'zod';

/** A stream entry's fields as returned by ioredis' *Buffer variants: [field, value, field, value…]. */
export type StreamFields = ReadonlyArray<Buffer | string>;

function toRecord(fields: StreamFields): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    out[String(fields[i])] = fields[i + 1] as Buffer | string;
  }
  return out;
}

function text(value: Buffer | string | undefined): string | undefined {
  return value === undefined ? undefined : typeof value === 'string' ? value : value.toString('utf8');
}

const imei = z.string().regex(/^\d{1,17}$/, 'IMEI must be 1-17 ASCII digits');
const epochMs = z.coerce.number().int().nonnegative();

// ---------------------------------------------------------------------------------------------
// telemetry:avl

export const Transport = z.enum(['tcp', 'udp']);
export type Transport = z.infer<typeof Transport>;

export const TelemetryEntry = z.object({
  imei,
  /** Codec id byte (8, 142, 16). */
  codec: z.coerce.number().int().min(0).max(255),
  transport: Transport,
  /** Ingestion instance that accepted the frame. */
  instance: z.string().min(1),
  /** When ingestion received the last byte of the frame. */
  receivedAt: epochMs,
  /** Records announced by the frame (N1 = N2). */
  records: z.coerce.number().int().min(0).max(255),
  /**
   * The raw bytes exactly as received: for TCP the whole AVL frame (preamble … CRC), for UDP the
   * whole datagram. Kept raw so a fixed parser can decode again.
   */
  frame: z.instanceof(Buffer),
});
export type TelemetryEntry = z.infer<typeof TelemetryEntry>;

export function encodeTelemetryEntry(e: TelemetryEntry): (string | Buffer)[] {
  return [
    'imei',
    e.imei,
    'codec',
    String(e.codec),
    'transport',
    e.transport,
    'instance',
    e.instance,
    'receivedAt',
    String(e.receivedAt),
    'records',
    String(e.records),
    'frame',
    e.frame,
  ];
}

export function decodeTelemetryEntry(fields: StreamFields): TelemetryEntry {
  const r = toRecord(fields);
  const frame = r.frame;
  return TelemetryEntry.parse({
    imei: text(r.imei),
    codec: text(r.codec),
    transport: text(r.transport),
    instance: text(r.instance),
    receivedAt: text(r.receivedAt),
    records: text(r.records),
    frame: typeof frame === 'string' ? Buffer.from(frame, 'latin1') : frame,
  });
}

// ---------------------------------------------------------------------------------------------
// telemetry:dead

export const DeadLetter = z.object({
  /** Id of the entry in telemetry:avl. */
  sourceId: z.string(),
  imei: z.string(),
  transport: z.string(),
  error: z.string(),
  deliveries: z.coerce.number().int().nonnegative(),
  failedAt: epochMs,
  /** Raw bytes of the failed entry (empty when the entry itself was unreadable). */
  frame: z.instanceof(Buffer),
});
export type DeadLetter = z.infer<typeof DeadLetter>;

export function encodeDeadLetter(d: DeadLetter): (string | Buffer)[] {
  return [
    'sourceId',
    d.sourceId,
    'imei',
    d.imei,
    'transport',
    d.transport,
    'error',
    d.error,
    'deliveries',
    String(d.deliveries),
    'failedAt',
    String(d.failedAt),
    'frame',
    d.frame,
  ];
}

export function decodeDeadLetter(fields: StreamFields): DeadLetter {
  const r = toRecord(fields);
  const frame = r.frame;
  return DeadLetter.parse({
    sourceId: text(r.sourceId),
    imei: text(r.imei),
    transport: text(r.transport),
    error: text(r.error),
    deliveries: text(r.deliveries),
    failedAt: text(r.failedAt),
    frame: frame === undefined ? Buffer.alloc(0) : typeof frame === 'string' ? Buffer.from(frame, 'latin1') : frame,
  });
}

// ---------------------------------------------------------------------------------------------
// connections:events

export const ConnectionEvent = z.object({
  type: z.enum(['connected', 'disconnected']),
  imei,
  instance: z.string().min(1),
  at: epochMs,
  /** Why: 'handshake' on connect; 'closed', 'idle', 'replaced', 'shutdown', 'error', … on disconnect. */
  reason: z.string().default(''),
  remote: z.string().default(''),
  transport: Transport.default('tcp'),
});
export type ConnectionEvent = z.infer<typeof ConnectionEvent>;
export type ConnectionEventInput = z.input<typeof ConnectionEvent>;

export function encodeConnectionEvent(e: ConnectionEventInput): string[] {
  const v = ConnectionEvent.parse(e);
  return [
    'type',
    v.type,
    'imei',
    v.imei,
    'instance',
    v.instance,
    'at',
    String(v.at),
    'reason',
    v.reason,
    'remote',
    v.remote,
    'transport',
    v.transport,
  ];
}

export function decodeConnectionEvent(fields: StreamFields): ConnectionEvent {
  const r = toRecord(fields);
  return ConnectionEvent.parse({
    type: text(r.type),
    imei: text(r.imei),
    instance: text(r.instance),
    at: text(r.at),
    reason: text(r.reason),
    remote: text(r.remote),
    transport: text(r.transport),
  });
}

// ---------------------------------------------------------------------------------------------
// devices:control

/**
 * A device's admission changed in Directus: the instance holding it checks it again (and closes
 * its session if it is now refused); every instance forgets its cached answer for the IMEI.
 */
export const DeviceControl = z.object({
  imei,
  /** `disabled`: enabled became false; `changed`: anything else that decides admission. */
  change: z.enum(['disabled', 'changed']),
  at: epochMs,
});
export type DeviceControl = z.infer<typeof DeviceControl>;

export function encodeDeviceControl(c: DeviceControl): string[] {
  const v = DeviceControl.parse(c);
  return ['imei', v.imei, 'change', v.change, 'at', String(v.at)];
}

export function decodeDeviceControl(fields: StreamFields): DeviceControl {
  const r = toRecord(fields);
  return DeviceControl.parse({ imei: text(r.imei), change: text(r.change), at: text(r.at) });
}

// ---------------------------------------------------------------------------------------------
// connections:registry values

export const RegistryValue = z.object({
  instance: z.string().min(1),
  connectedAt: epochMs,
  /** The device's `address:port` (tells a takeover from another address apart from a reconnect). */
  remote: z.string().optional(),
});
export type RegistryValue = z.infer<typeof RegistryValue>;

/**
 * `instance|connectedAt[|remote]`. A plain string (not JSON) so the compare-and-delete Lua script
 * can match the instance with a prefix test and no JSON parsing.
 */
export function encodeRegistryValue(v: RegistryValue): string {
  if (v.instance.includes('|')) throw new Error(`instance id must not contain '|': ${v.instance}`);
  if (v.remote?.includes('|')) throw new Error(`remote must not contain '|': ${v.remote}`);
  return v.remote ? `${v.instance}|${v.connectedAt}|${v.remote}` : `${v.instance}|${v.connectedAt}`;
}

export function decodeRegistryValue(value: string): RegistryValue {
  const [instance = '', connectedAt = '0', remote] = value.split('|');
  return RegistryValue.parse({ instance, connectedAt, ...(remote ? { remote } : {}) });
}

// ---------------------------------------------------------------------------------------------
// commands:outbound:{instance_id}

export const OutboundCommand = z.object({
  /** Primary key of the Directus `commands` item (stringified). */
  commandId: z.string().min(1),
  imei,
  /** Codec 12 command text (printable ASCII). */
  text: z.string(),
  /** Optional binary payload as lowercase hex; sent instead of the text when present. */
  payloadHex: z
    .string()
    .regex(/^([0-9a-f]{2})*$/)
    .default(''),
  /** After this the command must not be sent; it is reported `expired`. */
  expiresAt: epochMs,
  /** Dispatch attempt (1 for the first); lets the reader ignore stale re-deliveries. */
  attempt: z.coerce.number().int().min(1).default(1),
});
export type OutboundCommand = z.infer<typeof OutboundCommand>;
export type OutboundCommandInput = z.input<typeof OutboundCommand>;

export function encodeOutboundCommand(c: OutboundCommandInput): string[] {
  const v = OutboundCommand.parse(c);
  return [
    'commandId',
    v.commandId,
    'imei',
    v.imei,
    'text',
    v.text,
    'payloadHex',
    v.payloadHex,
    'expiresAt',
    String(v.expiresAt),
    'attempt',
    String(v.attempt),
  ];
}

export function decodeOutboundCommand(fields: StreamFields): OutboundCommand {
  const r = toRecord(fields);
  return OutboundCommand.parse({
    commandId: text(r.commandId),
    imei: text(r.imei),
    text: text(r.text),
    payloadHex: text(r.payloadHex),
    expiresAt: text(r.expiresAt),
    attempt: text(r.attempt),
  });
}

// ---------------------------------------------------------------------------------------------
// commands:responses

/**
 * - `sent`: written to the device socket.
 * - `answered`: the device's Codec 12/13 reply arrived (`response` holds its text).
 * - `failed`: the device went away or did not answer in time (`error` says which).
 * - `expired`: `expiresAt` passed before it could be sent.
 * - `not_held`: this instance does not hold the device (any more): re-dispatch it.
 */
export const CommandOutcome = z.enum(['sent', 'answered', 'failed', 'expired', 'not_held']);
export type CommandOutcome = z.infer<typeof CommandOutcome>;

export const CommandResponse = z.object({
  commandId: z.string().min(1),
  imei,
  instance: z.string().min(1),
  outcome: CommandOutcome,
  attempt: z.coerce.number().int().min(1).default(1),
  response: z.string().default(''),
  error: z.string().default(''),
  at: epochMs,
});
export type CommandResponse = z.infer<typeof CommandResponse>;
export type CommandResponseInput = z.input<typeof CommandResponse>;

export function encodeCommandResponse(c: CommandResponseInput): string[] {
  const v = CommandResponse.parse(c);
  return [
    'commandId',
    v.commandId,
    'imei',
    v.imei,
    'instance',
    v.instance,
    'outcome',
    v.outcome,
    'attempt',
    String(v.attempt),
    'response',
    v.response,
    'error',
    v.error,
    'at',
    String(v.at),
  ];
}

export function decodeCommandResponse(fields: StreamFields): CommandResponse {
  const r = toRecord(fields);
  return CommandResponse.parse({
    commandId: text(r.commandId),
    imei: text(r.imei),
    instance: text(r.instance),
    outcome: text(r.outcome),
    attempt: text(r.attempt),
    response: text(r.response),
    error: text(r.error),
    at: text(r.at),
  });
}
