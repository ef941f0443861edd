/**
 * Giving memory back once a crowd of connections has gone. V8 keeps the heap pages a garbage
 * collection frees pooled and resident for reuse; only a memory-reducing collection (the one V8
 * runs on a low-memory notification) returns them to the system. After 19,000 idle connections
 * closed, the daemon kept ~250 MiB of such pages with ~60 MiB of heap in use
 * (daemon/bench/ingest.md). So when the open sessions fall to half their peak, by at least
 * `minDrop`, one such collection runs once the closes have settled: a pause of tens of ms, after
 * an event that is itself rare (an outage, a redeploy of a balancer, a benchmark's fleet leaving).
 */
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
}

export class MemoryReleaser {
  private peak = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: MemoryReleaserOptions) {}

  /** Called whenever a session opens or closes. */
  track(): void {
    const d = memoryDecision(this.peak, this.o.open(), this.o.minDrop);
    this.peak = d.peak;
    if (d.kind === 'hold' || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const t0 = performance.now();
      this.o.release();
      const open = this.o.open();
      this.o.onReleased?.({ peak: this.peak, open, ms: performance.now() - t0 });
      this.peak = open;
    }, this.o.settleMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
