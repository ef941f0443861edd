/**
 * Deny-list matching. A pattern is a command name, optionally followed by a parameter id glob:
 * `flush` matches any `flush …`; `setparam 2004` matches a setparam that touches parameter 2004,
 * including `setparam 2001:apn;2004:host` (Teltonika accepts several `id:value` pairs at once).
 */

export interface ParsedCommand {
  /** Lowercased first word. */
  name: string;
  /** Parameter ids named by `id:value` pairs (or bare ids, as in `getparam 2004`). */
  params: string[];
}

export function parseCommandText(text: string): ParsedCommand {
  const trimmed = text.trim();
  const space = trimmed.search(/\s/);
  const name = (space < 0 ? trimmed : trimmed.slice(0, space)).toLowerCase();
  const rest = space < 0 ? '' : trimmed.slice(space + 1);
  const params = rest
    .split(';')
    .map((pair) => pair.split(':')[0]?.trim() ?? '')
    .flatMap((ids) => ids.split(/\s+/))
    .filter((id) => id.length > 0);
  return { name, params };
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`, 'i');
}

/** Returns the first deny pattern the command text matches, or null. */
export function matchDenyList(text: string, patterns: readonly string[]): string | null {
  const cmd = parseCommandText(text);
  for (const pattern of patterns) {
    const p = parseCommandText(pattern);
    if (!globToRegExp(p.name).test(cmd.name)) continue;
    if (p.params.length === 0) return pattern;
    const wanted = p.params.map(globToRegExp);
    if (cmd.params.some((id) => wanted.some((re) => re.test(id)))) return pattern;
  }
  return null;
}
