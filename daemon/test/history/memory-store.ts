/**
 * The derived rows of one device kept in memory, replaced by the same steps as the SQL store
 * (rederive + replace what the window owns): lets the property test compare incremental and
 * from-scratch derivation on thousands of histories without a database.
 */
import { byTime, isGoodFix, isTrustedTime, ownsEvent } from '../../src/history/derive.js';
import { type HistoryReader, rederive, type WindowStart } from '../../src/history/rederive.js';
import type { DetectionSettings } from '../../src/history/settings.js';
import type { DerivedWindow, HistoryPosition, PriorTotals } from '../../src/history/types.js';

export class MemoryHistory implements HistoryReader {
  positions: HistoryPosition[] = [];
  derived: DerivedWindow = {
    trips: [],
    stops: [],
    events: [],
    days: [],
    totals: { distanceDm: 0, engineMs: 0, ioOdometerKm: null, ioEngineHours: null },
  };

  constructor(private readonly settings: DetectionSettings) {}

  async lastGoodFixBefore(time: number): Promise<number | null> {
    let best: number | null = null;
    for (const p of this.positions)
      if (isGoodFix(p) && p.time < time && (best === null || p.time > best)) best = p.time;
    return best;
  }

  async stopStartEndedBy(time: number): Promise<number | null> {
    let best: number | null = null;
    for (const s of this.derived.stops) {
      if (s.endTime !== null && s.endTime <= time && (best === null || s.startTime > best)) best = s.startTime;
    }
    return best;
  }

  async positionsFrom(dayFrom: number | null): Promise<HistoryPosition[]> {
    if (dayFrom === null) return [...this.positions];
    const before = this.positions.filter((p) => p.time < dayFrom).sort(byTime);
    const lastGood = before.filter(isGoodFix).at(-1);
    const lastTrusted = before.filter(isTrustedTime).at(-1);
    const primes = [...new Set([lastGood, lastTrusted].filter((p): p is HistoryPosition => p !== undefined))];
    return [...primes, ...this.positions.filter((p) => p.time >= dayFrom)];
  }

  async prior(start: WindowStart): Promise<PriorTotals> {
    if (start.from === null || start.dayKey === null || start.dayFrom === null) {
      return { distanceDm: 0, engineMs: 0, tripsBefore: 0, stopsBefore: 0 };
    }
    const { from, dayFrom, dayKey } = start;
    const earlier = this.derived.days.filter((d) => d.day < dayKey);
    return {
      distanceDm: earlier.reduce((a, d) => a + d.distanceDm, 0),
      engineMs: earlier.reduce((a, d) => a + d.engineS * 1000, 0),
      tripsBefore: this.derived.trips.filter((t) => t.startTime >= dayFrom && t.startTime < from).length,
      stopsBefore: this.derived.stops.filter((s) => s.startTime >= dayFrom && s.startTime < from).length,
    };
  }

  /** Adds records (a delivered batch) and recomputes the window they invalidate. */
  async add(batch: readonly HistoryPosition[]): Promise<void> {
    this.positions.push(...batch);
    await this.recompute(Math.min(...batch.map((p) => p.time)));
  }

  async recompute(earliest: number | null): Promise<void> {
    const { start, result } = await rederive(this, earliest, this.settings);
    const from = start.from;
    const keep = <T>(rows: T[], time: (r: T) => number) => (from === null ? [] : rows.filter((r) => time(r) < from));
    this.derived = {
      trips: [...keep(this.derived.trips, (t) => t.startTime), ...result.trips],
      stops: [...keep(this.derived.stops, (s) => s.startTime), ...result.stops],
      events: [...this.derived.events.filter((e) => !ownsEvent(e, from)), ...result.events],
      days: [...this.derived.days.filter((d) => start.dayKey !== null && d.day < start.dayKey), ...result.days],
      totals: result.totals,
    };
  }
}
