/**
 * One recomputation step, independent of where rows live: new records at or after `earliest`
 * arrived for a device → find the reset point, load that window, derive it, replace what it owns.
 * The SQL store (store.ts) and the in-memory store of the property test run the same steps.
 */
import { dayOf, deriveWindow } from './derive.js';
import type { DetectionSettings } from './settings.js';
import type { DerivedWindow, HistoryPosition, PriorTotals } from './types.js';

/** Where a window starts: `from` (a stop start, or null = everything) and its local day. */
export interface WindowStart {
  from: number | null;
  /** Start of `from`'s day (epoch ms) and its key; null with `from`. */
  dayFrom: number | null;
  dayKey: string | null;
}

export interface HistoryReader {
  /** Time of the last good fix strictly before `time`, or null. */
  lastGoodFixBefore(time: number): Promise<number | null>;
  /** Start of the latest stored stop that ended at or before `time`, or null. */
  stopStartEndedBy(time: number): Promise<number | null>;
  /** Records at or after `dayFrom` (all when null) plus the last good fix and last trusted record before it. */
  positionsFrom(dayFrom: number | null): Promise<HistoryPosition[]>;
  /** What the window depends on but does not contain (see PriorTotals). */
  prior(start: WindowStart): Promise<PriorTotals>;
}

/** The window a change at or after `earliest` (null = everything) invalidates. */
export async function windowFor(
  reader: HistoryReader,
  earliest: number | null,
  settings: DetectionSettings,
): Promise<WindowStart> {
  if (earliest === null) return { from: null, dayFrom: null, dayKey: null };
  const p = await reader.lastGoodFixBefore(earliest);
  return windowStartAt(p === null ? null : await reader.stopStartEndedBy(p), settings);
}

/** The window starting at the reset point `from` (null = everything), with its local day. */
export function windowStartAt(from: number | null, settings: DetectionSettings): WindowStart {
  if (from === null) return { from: null, dayFrom: null, dayKey: null };
  const d = dayOf(from, settings.timeZone);
  return { from, dayFrom: d.start, dayKey: d.key };
}

/** Derives the window a change at or after `earliest` invalidates. */
export async function rederive(
  reader: HistoryReader,
  earliest: number | null,
  settings: DetectionSettings,
): Promise<{ start: WindowStart; result: DerivedWindow; positions: HistoryPosition[] }> {
  const start = await windowFor(reader, earliest, settings);
  const positions = await reader.positionsFrom(start.dayFrom);
  const prior = await reader.prior(start);
  return { start, positions, result: deriveWindow({ from: start.from, positions, settings, prior }) };
}
