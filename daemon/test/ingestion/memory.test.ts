import { describe, expect, it } from 'vitest';
import { MemoryReleaser, memoryDecision, reducingGc } from '../../src/ingestion/memory.js';

/** A releaser over a session count the test moves one open or close at a time (`to`). */
function crowd() {
  let open = 0;
  const runs: number[] = [];
  const releaser = new MemoryReleaser({ minDrop: 10, settleMs: 20, open: () => open, release: () => runs.push(open) });
  const to = (n: number) => {
    while (open !== n) {
      open += open < n ? 1 : -1;
      releaser.track();
    }
  };
  const settle = () => new Promise((r) => setTimeout(r, 60));
  return { runs, releaser, to, settle };
}

describe('memory release after connections go', () => {
  it('releases once the sessions fell to half their peak, by at least minDrop', () => {
    expect(memoryDecision(0, 19_000, 1000)).toEqual({ kind: 'hold', peak: 19_000 });
    expect(memoryDecision(19_000, 12_000, 1000)).toEqual({ kind: 'hold', peak: 19_000 });
    expect(memoryDecision(19_000, 9_500, 1000)).toEqual({ kind: 'release', peak: 19_000 });
    expect(memoryDecision(19_000, 0, 1000)).toEqual({ kind: 'release', peak: 19_000 });
    // A small fleet coming and going is not a crowd leaving.
    expect(memoryDecision(800, 0, 1000)).toEqual({ kind: 'hold', peak: 800 });
  });

  it('runs one collection per wave of closes, then measures the next drop from what is left', async () => {
    const { runs, releaser, to, settle } = crowd();
    to(30);
    to(5);
    await settle();
    expect(runs).toEqual([5]);
    // 5 → 12 → 8: not half of the new peak, no second run.
    to(12);
    to(8);
    await settle();
    expect(runs).toEqual([5]);
    releaser.stop();
  });

  it('skips the collection when a new crowd is logging in by then, and releases after that one leaves', async () => {
    const { runs, releaser, to, settle } = crowd();
    to(30);
    to(0);
    // Before the collection is due, 12 sessions log in again.
    to(12);
    await settle();
    expect(runs).toEqual([]);
    // That crowd grows to 25 and leaves: its own drop releases.
    to(25);
    to(0);
    await settle();
    expect(runs).toEqual([0]);
    releaser.stop();
  });

  it('returns the heap pages V8 kept after a large heap was freed', () => {
    const gc = reducingGc();
    expect(gc).not.toBeNull();
    const pooled = () => process.memoryUsage().rss;
    let garbage: object[] | null = Array.from({ length: 300_000 }, (_, i) => ({ i, s: `x${i}`, a: [i, i] }));
    const held = pooled();
    garbage = null;
    gc?.();
    expect(garbage).toBeNull();
    expect(pooled()).toBeLessThan(held - 10 * 1024 * 1024);
  });
});
