/**
 * Command text → what the device will do: a name, and for the parameter commands (`setparam`,
 * `getparam`) the parameter ids as numbers with their values. Permission decisions read the
 * parsed form, never the text, so spellings a device accepts (`setparam 02004:x`,
 * `SETPARAM2004:x`, `setparam 1:a;2004:b`) cannot hide a parameter from them.
 *
 * Grammar (what Teltonika devices accept over GPRS/SMS):
 *   command   = name [ args ]            name = letters and '_' (case-insensitive)
 *   args      = anything printable       (separated from the name by spaces, or not at all)
 *   for setparam/getparam:  args = pair *( ';' pair )   pair = id [ ( ':' | ' ' ) value ]   id = digits
 */

/** Commands whose arguments are parameter ids (with values for setparam). */
export const PARAMETER_COMMANDS: ReadonlySet<string> = new Set(['setparam', 'getparam']);

/** Largest Teltonika parameter id (ids are at most 5 digits; 0-65535 covers every model). */
export const MAX_PARAMETER_ID = 65_535;

export interface CommandParameter {
  id: number;
  /** The value after the id (setparam), or null when none was given. */
  value: string | null;
}

export interface ParsedCommand {
  /** Lowercased. */
  name: string;
  /** Everything after the name, trimmed. */
  args: string;
  /** For parameter commands: each id once per mention, in order; empty otherwise. */
  params: CommandParameter[];
}

export type ParseResult = { ok: true; command: ParsedCommand } | { ok: false; error: string };

const PRINTABLE = /^[\x20-\x7e]*$/;

export function parseCommand(text: string): ParseResult {
  if (!PRINTABLE.test(text)) return { ok: false, error: 'contains control or non-ASCII characters' };
  const trimmed = text.trim();
  const name = /^[A-Za-z_]+/.exec(trimmed)?.[0];
  if (!name) return { ok: false, error: 'a command starts with its name (letters)' };
  const args = trimmed.slice(name.length).trim();
  const lower = name.toLowerCase();
  if (!PARAMETER_COMMANDS.has(lower)) return { ok: true, command: { name: lower, args, params: [] } };
  if (args === '') return { ok: false, error: `${lower} needs at least one parameter id` };
  const params: CommandParameter[] = [];
  for (const pair of args.split(';')) {
    const m = /^\s*(\d+)(?:\s*[: ]\s*(.*?))?\s*$/.exec(pair);
    const id = m ? Number(m[1]) : Number.NaN;
    if (!m || !Number.isSafeInteger(id) || id > MAX_PARAMETER_ID) {
      return { ok: false, error: `"${pair.trim()}" is not a parameter id (a whole number up to ${MAX_PARAMETER_ID})` };
    }
    params.push({ id, value: m[2] === undefined ? null : m[2] });
  }
  return { ok: true, command: { name: lower, args, params } };
}

/**
 * One allow-list entry: `name` (any arguments) or `name ids`, where ids is a `|`-separated list
 * of ids or ranges (`setparam 11000-11999|2`), for parameter commands only.
 */
export interface AllowRule {
  name: string;
  /** null: any ids; else inclusive ranges. */
  ids: Array<[number, number]> | null;
}

export function parseAllowRule(entry: string): AllowRule {
  const m = /^\s*([A-Za-z_]+)(?:\s+([\d|\s-]+))?\s*$/.exec(entry);
  if (!m?.[1]) throw new Error(`allow-list entry "${entry}" is not "name" or "name ids"`);
  const name = m[1].toLowerCase();
  if (m[2] === undefined) return { name, ids: null };
  if (!PARAMETER_COMMANDS.has(name)) throw new Error(`allow-list entry "${entry}": only setparam/getparam take ids`);
  const ids = m[2].split('|').map((part): [number, number] => {
    const [lo, hi = lo] = part
      .trim()
      .split('-')
      .map((n) => Number(n.trim()));
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || (lo as number) > (hi as number)) {
      throw new Error(`allow-list entry "${entry}": "${part.trim()}" is not an id or lo-hi range`);
    }
    return [lo as number, hi as number];
  });
  return { name, ids };
}

/** Read-only and everyday commands an Operator may send; anything else needs an Administrator. */
export const DEFAULT_ALLOW = [
  'getinfo',
  'getver',
  'getstatus',
  'getgps',
  'ggps',
  'getio',
  'readio',
  'getparam',
  'getimeiccid',
  'getcfgtime',
  'countrecs',
  'battery',
  'btgetlist',
  'obdinfo',
  'faultcodes',
  'setdigout',
] as const;

export type Permission = { allowed: true } | { allowed: false; reason: string };

/** Whether the allow-list lets a non-admin send `command` (every id of it must be allowed). */
export function allowedFor(command: ParsedCommand, rules: readonly AllowRule[]): Permission {
  const mine = rules.filter((r) => r.name === command.name);
  if (mine.length === 0) return { allowed: false, reason: `"${command.name}" is not on the allow-list` };
  if (mine.some((r) => r.ids === null)) return { allowed: true };
  const outside = command.params.find((p) => !mine.some((r) => r.ids?.some(([lo, hi]) => p.id >= lo && p.id <= hi)));
  return outside
    ? { allowed: false, reason: `parameter ${outside.id} of "${command.name}" is not on the allow-list` }
    : { allowed: true };
}
