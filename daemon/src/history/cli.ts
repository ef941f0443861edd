/**
 * `daemon derive` arguments: none = run the worker; `--from T [--to T] [--device ID|IMEI]` =
 * recompute that range once and print what changed per device.
 */
import { parseArgs } from 'node:util';

export const DERIVE_USAGE = `usage: daemon derive                     run the history worker (trips, stops, events)
       daemon derive --from T [--to T] [--device ID|IMEI] [--all]
                                          recompute once from T (ISO 8601 time), e.g. after a settings change;
                                          --all recomputes every device's whole history`;

export type DeriveCommand =
  | { kind: 'worker' }
  | { kind: 'range'; from: number | null; to: number | null; device?: string }
  | { kind: 'help' }
  | { kind: 'error'; message: string };

function time(v: string | undefined, name: string): number | null | string {
  if (v === undefined) return null;
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? `--${name}: not a time: ${v}` : ms;
}

export function parseDeriveArgs(argv: string[]): DeriveCommand {
  let parsed: ReturnType<typeof parseArgs<{ options: Record<string, { type: 'string' | 'boolean' }> }>>;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        from: { type: 'string' },
        to: { type: 'string' },
        device: { type: 'string' },
        all: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
  } catch (err) {
    return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
  }
  const v = parsed.values as { from?: string; to?: string; device?: string; all?: boolean; help?: boolean };
  if (v.help) return { kind: 'help' };
  if (v.from === undefined && !v.all) {
    if (v.to !== undefined || v.device !== undefined)
      return { kind: 'error', message: '--to and --device need --from (or --all)' };
    return { kind: 'worker' };
  }
  const from = v.all ? null : time(v.from, 'from');
  const to = time(v.to, 'to');
  if (typeof from === 'string') return { kind: 'error', message: from };
  if (typeof to === 'string') return { kind: 'error', message: to };
  if (from !== null && to !== null && to < from) return { kind: 'error', message: '--to is before --from' };
  return { kind: 'range', from, to, device: v.device };
}
