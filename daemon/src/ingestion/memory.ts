/**
 * Giving memory back once a crowd of connections has gone. V8 keeps the heap pages a garbage
 * collection frees pooled and resident for reuse; only a memory-reducing collection (the one V8
 * runs on a low-memory notification) returns them to the system. After 19,000 idle connections
 * closed, the daemon kept ~250 MiB of such pages with ~60 MiB of heap in use
 * (daemon/bench/ingest.md). So when the open sessions fall to half their peak, by at least
 * `minDrop`, one such collection runs once the closes have settled: a pause of tens of ms, after
 * an event that is itself rare (an outage, a redeploy of a balancer, a benchmark's fleet leaving).
 * The collection waits, a settle period at a time, while a new crowd is logging in or the event
 * loop is busy: its stop (10-100 ms measured, more on a loaded machine) would fall among their
 * logins and frames, and a busy daemon reuses the pooled pages anyway. It runs once things calm.
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export type MemoryDecision = { kind: 'hold'; peak: number } | { kind: 'release'; peak: number };

/** What to do with `open` sessions now, `peak` being the most open since the last release. */
export function memoryDecision(peak: number, open: number, minDrop: number): MemoryDecision {
  const top = Math.max(peak, open);
  return top - open >= minDrop && open <= top / 2 ? { kind: 'release', peak: top } : { kind: 'hold', peak: top };
}

/**
 * A memory-reducing full collection, or null where this Node cannot run one. `gc` is exposed in
 * a context of its own only (the flag applies to contexts made after it is set), so the daemon's
 * global scope does not gain it.
 */
export function reducingGc(): (() => void) | null {
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    if (typeof gc !== 'function') return null;
    return () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } catch {
    return null;
  }
}

/** This process's event-loop utilisation (0-1) since the previous call of the returned function. */
export function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return u;
  };
}

export interface MemoryReleaserOptions {
  /** Sessions that must have gone (and at least half the peak) before memory is released. */
  minDrop: number;
  /** Wait this long after the drop, so one collection follows a wave of closes. */
  settleMs: number;
  /** How many sessions are open now. */
  open(): number;
  /** Runs the collection; returns what it did, for the log. */
  release(): void;
  onReleased?(info: { peak: number; open: number; ms: number }): void;
  /** The event loop's utilisation (0-1) since the previous call (none: never busy). */
  utilization?(): number;
  /** Above this utilisation over a settle period the collection waits another period. Default 0.1. */
  busyAbove?: number;
}

/** What a due collection does: run now, or wait a settle period more. */
export function dueDecision(o: {
  open: number;
  /** The fewest sessions open since the collection was armed (or last put off). */
  low: number;
  minDrop: number;
  utilization: number;
  busyAbove: number;
}): 'release' | 'wait' {
  const arriving = o.open - o.low >= o.minDrop;
  return arriving || o.utilization > o.busyAbove ? 'wait' : 'release';
}

export class MemoryReleaser {
  private peak = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The fewest sessions open since the timer was armed. */
  private low = 0;

  constructor(private readonly o: MemoryReleaserOptions) {}

  /** Called whenever a session opens or closes. */
  track(): void {
    const open = this.o.open();
    if (this.timer) this.low = Math.min(this.low, open);
    const d = memoryDecision(this.peak, open, this.o.minDrop);
    this.peak = d.peak;
    if (d.kind === 'hold' || this.timer) return;
    this.o.utilization?.(); // the busy check covers the settle period only
    this.arm(open);
  }

  private arm(open: number): void {
    this.low = open;
    this.timer = setTimeout(() => this.due(), this.o.settleMs);
    this.timer.unref();
  }

  private due(): void {
    this.timer = null;
    const now = this.o.open();
    const decision = dueDecision({
      open: now,
      low: this.low,
      minDrop: this.o.minDrop,
      utilization: this.o.utilization?.() ?? 0,
      busyAbove: this.o.busyAbove ?? 0.1,
    });
    if (decision === 'wait') {
      this.arm(now);
      return;
    }
    const t0 = performance.now();
    this.o.release();
    const open = this.o.open();
    this.o.onReleased?.({ peak: this.peak, open, ms: performance.now() - t0 });
    this.peak = open;
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
