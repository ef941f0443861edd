/**
 * Command templates for Teltonika trackers (Codec 12 text commands) and the client-side check of
 * what an operator typed. The check is the commands hook's own rule (shared/commands), run early
 * for friendly feedback in the console; the hook applies it again on create.
 */
import { MAX_COMMAND_BYTES } from '@fleet/daemon/contract/limits';
import {
  CANCELLABLE_STATUSES,
  type CommandStatus,
  RETRYABLE_STATUSES,
  TERMINAL_STATUSES,
} from '../shared/commands/lifecycle';
import statusColours from '../shared/commands/status-colours.json';
import { CommandRuleError, normalizeText } from '../shared/commands/validation';

export type { CommandStatus };

export interface CommandTemplate {
  label: string;
  text: string;
  /** Placeholder the operator has to replace, if any. */
  needs?: string;
}

export const TEMPLATES: readonly CommandTemplate[] = [
  { label: 'Device info', text: 'getinfo' },
  { label: 'Firmware version', text: 'getver' },
  { label: 'Status', text: 'getstatus' },
  { label: 'Current GPS', text: 'getgps' },
  { label: 'IO readout', text: 'getio' },
  { label: 'Read IO element', text: 'readio <id>', needs: '<id>' },
  { label: 'Digital outputs on (DOUT1)', text: 'setdigout 1' },
  { label: 'Digital outputs off (DOUT1)', text: 'setdigout 0' },
  { label: 'Read parameter', text: 'getparam <id>', needs: '<id>' },
  { label: 'Set parameter', text: 'setparam <id>:<value>', needs: '<id>' },
  { label: 'Flush records to server', text: 'getrecord' },
  { label: 'Restart device', text: 'cpureset' },
];

export function validateCommandText(text: string): string | null {
  if (!text.trim()) return 'Type a command or pick a template.';
  try {
    normalizeText(text, MAX_COMMAND_BYTES);
  } catch (err) {
    if (err instanceof CommandRuleError) return err.message;
    throw err;
  }
  if (/<[a-z]+>/i.test(text)) return 'Replace the <placeholder> in the template first.';
  return null;
}

/** One colour per status, shared with the Content module's status labels (directus/schema). */
export const STATUS_COLOURS: Record<string, string> = statusColours;

/** A command in one of these states will not change any more: stop highlighting it as live. */
export function isFinal(status: string): boolean {
  return TERMINAL_STATUSES.has(status as CommandStatus);
}

/** Actions of the `fleet-commands` endpoint the console offers: those its rules accept in this state. */
export function actionsFor(status: string): ('cancel' | 'retry')[] {
  if (CANCELLABLE_STATUSES.has(status as CommandStatus)) return ['cancel'];
  if (RETRYABLE_STATUSES.has(status as CommandStatus)) return ['retry'];
  return [];
}

/** Path of a command action on the `fleet-commands` endpoint. */
export function actionPath(id: string | number, action: 'cancel' | 'retry'): string {
  return `/fleet-commands/${encodeURIComponent(String(id))}/${action}`;
}

/** Query for the device's recent commands through the Studio API (the `commands` collection). */
export function recentCommandsParams(device: string | number, limit = 20): Record<string, unknown> {
  return { 'filter[device][_eq]': device, sort: '-created_at', limit, fields: '*' };
}

/** Query for the device picker: Directus `search` matches name and IMEI (string fields). */
export function deviceSearchParams(q: string, limit = 20): Record<string, unknown> {
  const params: Record<string, unknown> = { fields: 'id,name,imei,online', limit, sort: 'name' };
  if (q.trim()) params.search = q.trim();
  return params;
}

/** Commands that change the device (outputs, parameters, resets): the console asks before sending. */
export function needsConfirmation(text: string): string | null {
  const t = text.trim().toLowerCase();
  if (/^setdigout\b/.test(t)) return "This switches the device's digital outputs (e.g. a relay or immobiliser).";
  if (/^(cpureset|reset|defaultcfg|deleterecords|fwupdate)\b/.test(t)) return 'This restarts or resets the device.';
  if (/^(setparam|flush|setkey|sms)\b/.test(t)) return "This changes the device's configuration.";
  return null;
}

/**
 * Device replies that report a problem ("Unknown command", "Param ID error", "Wrong parameter") are
 * shown as such, not as a green success: Teltonika answers a bad command with text, not an error code.
 */
export function replyLooksLikeError(reply: string | null | undefined): boolean {
  return Boolean(
    reply && /\b(unknown|error|invalid|wrong|fail(ed|ure)?|not (supported|allowed|found)|denied)\b/i.test(reply),
  );
}

export interface CommandView {
  status: string;
  response?: string | null;
  error?: string | null;
  expires_at?: string | null;
}

/**
 * What happened to a command, in words: an offline device's command is queued until it connects
 * (never "sent"), with its expiry; a reply that reads as an error says so.
 */
export function describeCommand(
  c: CommandView,
  deviceOnline: boolean | undefined,
  formatTime: (v: string) => string,
): string {
  const expires = c.expires_at ? `; expires ${formatTime(c.expires_at)}` : '';
  switch (c.status) {
    case 'pending':
      return deviceOnline === false
        ? `Queued until the device connects${expires}.`
        : `Waiting to be handed to the device's connection${expires}.`;
    case 'queued':
      return `Queued on the device's connection, about to be written${expires}.`;
    case 'sent':
      return `Written to the device; waiting for its reply${expires}.`;
    case 'answered':
      return replyLooksLikeError(c.response) ? 'The device answered with an error.' : 'The device answered.';
    case 'failed':
      return `Failed: ${c.error || 'no reason given'}.`;
    case 'expired':
      return 'Expired before the device could be reached.';
    case 'cancelled':
      return 'Cancelled before it was sent.';
    default:
      return c.status;
  }
}
