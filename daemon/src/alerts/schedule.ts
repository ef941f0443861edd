/**
 * Time-of-week windows of an alert rule ("only nights and weekends"), in a time zone. Pure.
 *
 * A window is `{ days, from, to }`: ISO weekdays (1 = Monday … 7 = Sunday; empty = every day) and
 * local times `HH:MM`. A window whose `to` is not after its `from` runs past midnight into the next
 * day (22:00–06:00 on Friday covers Friday 22:00 to Saturday 06:00); `from` = `to` is the whole day.
 * No windows at all means always.
 */
import { z } from 'zod';

const hhmm = z.string().regex(/^([01]?\d|2[0-3]):[0-5]\d$/, 'a time HH:MM');

export const ScheduleWindow = z.object({
  days: z
    .array(z.coerce.number().int().min(1).max(7))
    .nullish()
    .transform((d) => d ?? []),
  from: hhmm,
  to: hhmm,
});
export type ScheduleWindow = z.infer<typeof ScheduleWindow>;
export const Schedule = z
  .array(ScheduleWindow)
  .nullish()
  .transform((s) => s ?? []);

const minutes = (t: string): number => {
  const [h, m] = t.split(':');
  return Number(h) * 60 + Number(m);
};

const WEEKDAYS: Record<string, number> = { Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6, Sun: 7 };
const formatters = new Map<string, Intl.DateTimeFormat>();

/** ISO weekday and minute of the day of an instant in a time zone. */
export function localTimeOfWeek(epochMs: number, timeZone: string): { day: number; minute: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  let day = 0;
  let hour = 0;
  let minute = 0;
  for (const p of f.formatToParts(epochMs)) {
    if (p.type === 'weekday') day = WEEKDAYS[p.value] ?? 0;
    else if (p.type === 'hour') hour = Number(p.value);
    else if (p.type === 'minute') minute = Number(p.value);
  }
  return { day, minute: hour * 60 + minute };
}

/** True when a time zone name is one the runtime knows. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export function inSchedule(windows: readonly ScheduleWindow[], epochMs: number, timeZone: string): boolean {
  if (windows.length === 0) return true;
  const { day, minute } = localTimeOfWeek(epochMs, timeZone);
  const previous = day === 1 ? 7 : day - 1;
  const on = (w: ScheduleWindow, d: number) => w.days.length === 0 || w.days.includes(d);
  return windows.some((w) => {
    const from = minutes(w.from);
    const to = minutes(w.to);
    if (from === to) return on(w, day);
    if (from < to) return on(w, day) && minute >= from && minute < to;
    return (on(w, day) && minute >= from) || (on(w, previous) && minute < to);
  });
}
