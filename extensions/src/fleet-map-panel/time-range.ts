/** Track time ranges: presets and `<input type="datetime-local" step="1">` values (local time). */

const p2 = (n: number) => String(n).padStart(2, '0');

export function toDateTimeLocal(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

export function fromDateTimeLocal(value: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (!m) throw new Error(`not a date and time: ${value}`);
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return new Date(y!, mo! - 1, d!, h!, mi!, s || 0).getTime();
}

/** The last `hours` up to now, rounded outwards to whole minutes. */
export function lastHours(hours: number, now = Date.now()): { fromMs: number; toMs: number } {
  const toMs = Math.ceil(now / 60_000) * 60_000;
  return { fromMs: toMs - hours * 3600_000, toMs };
}

export const PRESETS = [
  { id: 'lastHour', label: 'Last hour' },
  { id: 'last24h', label: 'Last 24 hours' },
  { id: 'today', label: 'Today' },
  { id: 'yesterday', label: 'Yesterday' },
  { id: 'last7d', label: 'Last 7 days' },
] as const;
export type PresetId = (typeof PRESETS)[number]['id'];

function startOfDay(ms: number, addDays = 0): number {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate() + addDays).getTime();
}

/** A preset as a range in local time ("today" = local midnight until now). */
export function presetRange(id: PresetId, now = Date.now()): { fromMs: number; toMs: number } {
  switch (id) {
    case 'lastHour':
      return lastHours(1, now);
    case 'last24h':
      return lastHours(24, now);
    case 'today':
      return { fromMs: startOfDay(now), toMs: lastHours(0, now).toMs };
    case 'yesterday':
      return { fromMs: startOfDay(now, -1), toMs: startOfDay(now) - 1000 };
    case 'last7d':
      return { fromMs: startOfDay(now, -6), toMs: lastHours(0, now).toMs };
  }
}
