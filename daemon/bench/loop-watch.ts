/**
 * A bench server's event-loop delay over one phase, with what is cheap to say about where its max
 * comes from: the max before and after a mark (the first seconds of sending hold the fleet's start:
 * its first frames, and the collections of what its logins left in the young generation), and the
 * longest garbage-collection pause of the window. Used by ingest-server.ts and ingest-peers.ts
 * alike, so the three servers are measured the same way.
 */
import { monitorEventLoopDelay, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';

export interface LoopWindow {
  loopP99Ms: number;
  /** Max over the whole window: the bench's bar. */
  loopMaxMs: number;
  /** Max from the window's start to the mark, and from the mark on (null: no mark). */
  loopMaxBeforeMarkMs: number | null;
  loopMaxAfterMarkMs: number | null;
  /** Longest GC pause in the window, its kind and its start (s after the window's start). */
  gcMaxMs: number;
  gcMaxKind: string;
  gcMaxAtS: number;
  /** GC pauses of 10 ms or more in the window. */
  gcOver10: number;
}

/** node:perf_hooks' `detail.kind` of a gc entry. */
const GC_KINDS: Record<number, string> = { 1: 'scavenge', 2: 'minor mark-sweep', 4: 'major', 8: 'weak callbacks' };

export function watchLoop(): { window(): LoopWindow; mark(): void } {
  // The whole window, and the part after the mark: two monitors, as a histogram cannot be split.
  const whole = monitorEventLoopDelay({ resolution: 1 });
  const afterMark = monitorEventLoopDelay({ resolution: 1 });
  whole.enable();
  afterMark.enable();
  let started = performance.now();
  let maxAtMark: number | null = null;
  const gc = { maxMs: 0, kind: '', at: 0, over10: 0 };
  const note = (entries: readonly PerformanceEntry[]) => {
    for (const e of entries) {
      if (e.startTime < started) continue;
      if (e.duration >= 10) gc.over10++;
      if (e.duration > gc.maxMs) {
        gc.maxMs = e.duration;
        gc.kind = GC_KINDS[(e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other';
        gc.at = (e.startTime - started) / 1000;
      }
    }
  };
  const obs = new PerformanceObserver((list) => note(list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  return {
    mark() {
      maxAtMark = whole.max;
      afterMark.reset();
    },
    /** The window since the previous call (or the start); starts the next one. */
    window() {
      // Pauses not yet delivered (a busy loop delivers them late) belong to this window.
      note(obs.takeRecords());
      const w: LoopWindow = {
        loopP99Ms: whole.percentile(99) / 1e6,
        loopMaxMs: whole.max / 1e6,
        loopMaxBeforeMarkMs: maxAtMark === null ? null : maxAtMark / 1e6,
        // No sample after the mark: the loop was blocked from the mark to here (an overrun peer).
        loopMaxAfterMarkMs: maxAtMark === null || afterMark.count === 0 ? null : afterMark.max / 1e6,
        gcMaxMs: gc.maxMs,
        gcMaxKind: gc.kind,
        gcMaxAtS: gc.at,
        gcOver10: gc.over10,
      };
      whole.reset();
      afterMark.reset();
      maxAtMark = null;
      started = performance.now();
      Object.assign(gc, { maxMs: 0, kind: '', at: 0, over10: 0 });
      return w;
    },
  };
}
