/** Conversions between epoch ms and `<input type="datetime-local">` values (local time, minutes). */

export function toDateTimeLocal(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function fromDateTimeLocal(value: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (!m) throw new Error(`not a date and time: ${value}`);
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return new Date(y!, mo! - 1, d!, h!, mi!, s || 0).getTime();
}

/** The last `hours` up to now, rounded outwards to whole minutes so the inputs show the full range. */
export function lastHours(hours: number, now = Date.now()): { fromMs: number; toMs: number } {
  const toMs = Math.ceil(now / 60_000) * 60_000;
  return { fromMs: toMs - hours * 3600_000, toMs };
}
