import { describe, expect, it } from 'vitest';
import { MemoryReleaser, memoryDecision, reducingGc } from '../../src/ingestion/memory.js';

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
    let open = 0;
    const runs: number[] = [];
    const releaser = new MemoryReleaser({
      minDrop: 10,
      settleMs: 20,
      open: () => open,
      release: () => runs.push(open),
    });
    for (; open < 30; open++) releaser.track();
    for (; open > 5; open--) releaser.track();
    releaser.track();
    await new Promise((r) => setTimeout(r, 60));
    expect(runs).toEqual([5]);
    // 5 → 12 → 8: not half of the new peak, no second run.
    for (; open < 12; open++) releaser.track();
    for (; open > 8; open--) releaser.track();
    await new Promise((r) => setTimeout(r, 60));
    expect(runs).toEqual([5]);
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
