import { describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/index.js';
import {
  dueDecision,
  loopUtilization,
  MemoryReleaser,
  memoryDecision,
  reducingGc,
} from '../../src/ingestion/memory.js';

/** A releaser over a session count the test moves one open or close at a time (`to`). */
function crowd(utilization?: () => number) {
  const c = { open: 0, runs: [] as number[] };
  const releaser = new MemoryReleaser({
    minDrop: 10,
    settleMs: 20,
    open: () => c.open,
    release: () => c.runs.push(c.open),
    utilization,
  });
  const to = (n: number) => {
    while (c.open !== n) {
      c.open += c.open < n ? 1 : -1;
      releaser.track();
    }
  };
  return { runs: c.runs, releaser, to };
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
    const { runs, releaser, to } = crowd();
    to(30);
    to(5);
    await waitFor('the collection', () => runs.length > 0);
    expect(runs).toEqual([5]);
    // 5 → 12 → 8: not half of the new peak, no second run.
    to(12);
    to(8);
    await new Promise((r) => setTimeout(r, 60));
    expect(runs).toEqual([5]);
    releaser.stop();
  });

  it('puts a due collection off while a crowd is logging in or the loop is busy', () => {
    const o = { minDrop: 10, busyAbove: 0.1 };
    expect(dueDecision({ ...o, open: 0, low: 0, utilization: 0 })).toBe('release');
    expect(dueDecision({ ...o, open: 12, low: 0, utilization: 0 })).toBe('wait');
    expect(dueDecision({ ...o, open: 9, low: 0, utilization: 0.05 })).toBe('release');
    expect(dueDecision({ ...o, open: 9, low: 0, utilization: 0.3 })).toBe('wait');
  });

  it('waits while the new crowd logs in and sends, then releases once, when the loop calms', async () => {
    let busy = true;
    let checks = 0;
    const { runs, releaser, to } = crowd(() => {
      checks++;
      return busy ? 0.5 : 0;
    });
    to(30);
    to(0);
    to(12);
    // one check when armed, then every due one: two or more found the loop busy
    await waitFor('two due checks that found the loop busy', () => checks >= 3);
    expect(runs).toEqual([]);
    busy = false;
    await waitFor('the collection', () => runs.length > 0);
    expect(runs).toEqual([12]);
    releaser.stop();
  });

  it("measures this process's event-loop utilisation between calls", () => {
    const u = loopUtilization();
    u();
    const until = performance.now() + 30;
    while (performance.now() < until) {
      // busy: the loop is held
    }
    expect(u()).toBeGreaterThan(0.5);
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
