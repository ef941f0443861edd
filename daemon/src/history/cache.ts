/**
 * A worker's copy of its devices' window positions, so that a pass reads only the positions at or
 * after the device's earliest mark instead of its whole window (a long trip, a whole first day).
 *
 * Why the copy plus what is read is the window: positions are insert-only, and every position
 * commit writes a mark with from_time ≤ its fix time in the same statement. A pass deletes the
 * marks it sees before it reads positions, so after it, every position at or after the window's
 * day start is either in the copy or has a live mark. The next pass's earliest mark `since` then
 * bounds what the copy may lack — unless another deriver (a second worker, `derive --from`) took
 * marks in between. Every derivation records its transaction in `history_state`, so the copy is
 * used only while the device's last derivation is the one that stored it; otherwise, when the
 * window starts before the copy or a mark precedes it, the window is read whole.
 *
 * Retention drops whole months of positions (POSITIONS_RETENTION_MONTHS, at least 1: the current
 * and the previous month stay), so a copy reaching back further than NEVER_DROPPED_MS is not used:
 * positions it holds may be gone from the table.
 */
import { byTime, isGoodFix, isTrustedTime } from './derive.js';
import type { DeviceKey } from './hooks.js';
import type { HistoryPosition } from './types.js';

/** Positions younger than this are never dropped by retention (see the header). */
export const NEVER_DROPPED_MS = 28 * 86_400_000;

interface Entry {
  /** The derivation (history_state.derived_in) that read these positions. */
  token: string;
  /** Complete from here (null: the whole history), plus the last good fix and trusted record before it. */
  dayFrom: number | null;
  /** By time. */
  positions: readonly HistoryPosition[];
}

export class WindowCache {
  private readonly entries = new Map<DeviceKey, Entry>();
  private held = 0;

  /** `maxPositions`: the most positions kept over all devices (least recently derived dropped first). */
  constructor(private readonly maxPositions: number) {}

  get positions(): number {
    return this.held;
  }

  /**
   * Whether the copy of `device` can serve a window starting at day `dayFrom` when positions at or
   * after `since` may be missing from it; a copy that cannot is dropped.
   */
  covers(device: DeviceKey, token: string | null, since: number, dayFrom: number | null, now = Date.now()): boolean {
    const e = this.entries.get(device);
    if (!e) return false;
    const ok =
      token === e.token &&
      (e.positions[0]?.time ?? now) >= now - NEVER_DROPPED_MS &&
      (e.dayFrom === null || (dayFrom !== null && dayFrom >= e.dayFrom && since >= e.dayFrom));
    if (!ok) this.drop(device);
    return ok;
  }

  /**
   * The window's positions: the copy before `since` and `fresh` (everything read from `since` on),
   * from `dayFrom` on, with the last good fix and last trusted record before it. By time.
   */
  window(
    device: DeviceKey,
    since: number,
    fresh: readonly HistoryPosition[],
    dayFrom: number | null,
  ): HistoryPosition[] {
    const copy = this.entries.get(device)!.positions;
    // The copy before `since`, then the read from `since` on. The read's own last records before
    // `since` (its last good fix and trusted record) may already be in the copy: each is looked up
    // by time and added in order if not (a pass touches these few, not every position it keeps).
    const all = copy.slice(0, firstAtOrAfter(copy, since));
    for (const p of fresh) {
      if (p.time >= since) continue;
      let at = firstAtOrAfter(all, p.time);
      let copied = false;
      for (let k = at; k < all.length && all[k]!.time === p.time; k++) copied ||= String(all[k]!.id) === String(p.id);
      if (copied) continue;
      while (at < all.length && byTime(all[at]!, p) <= 0) at++;
      all.splice(at, 0, p);
    }
    const late = fresh.filter((p) => p.time >= since).sort(byTime);
    for (const p of late) all.push(p);
    if (dayFrom === null) return all;
    const start = firstAtOrAfter(all, dayFrom);
    const before = all.slice(0, start);
    const lastGood = before.findLast(isGoodFix);
    const lastTrusted = before.findLast(isTrustedTime);
    const primes = [...new Set([lastGood, lastTrusted].filter((p): p is HistoryPosition => p !== undefined))];
    return [...primes.sort(byTime), ...all.slice(start)];
  }

  /** Keeps what a committed derivation (`token`) used as the device's window. */
  store(device: DeviceKey, token: string, dayFrom: number | null, positions: readonly HistoryPosition[]): void {
    this.drop(device);
    if (positions.length > this.maxPositions) return;
    this.entries.set(device, { token, dayFrom, positions: [...positions].sort(byTime) });
    this.held += positions.length;
    for (const [d, e] of this.entries) {
      if (this.held <= this.maxPositions) break;
      this.entries.delete(d);
      this.held -= e.positions.length;
    }
  }

  drop(device: DeviceKey): void {
    const e = this.entries.get(device);
    if (!e) return;
    this.entries.delete(device);
    this.held -= e.positions.length;
  }
}

/** Index of the first position at or after `time` in positions sorted by time. */
function firstAtOrAfter(sorted: readonly HistoryPosition[], time: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.time < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
