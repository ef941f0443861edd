/**
 * The worker's window copy: composed with what a pass reads from its earliest mark on, it must be
 * exactly the window a whole read gives (the reads of the in-memory store, which mirror the SQL
 * ones), and it must refuse to serve when it cannot prove that.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryHistory } from '../../test/history/memory-store.js';
import { NEVER_DROPPED_MS, WindowCache } from './cache.js';
import { byTime } from './derive.js';
import { DEFAULT_SETTINGS } from './settings.js';
import type { HistoryPosition } from './types.js';

const S = 1000;
const FLAGS = [[], [], ['no_fix'], ['future'], ['jump']] as const;

/** What a read from `dayFrom` returns: records from then on, plus the last good fix and trusted record before. */
async function read(all: readonly HistoryPosition[], dayFrom: number | null): Promise<HistoryPosition[]> {
  const store = new MemoryHistory(DEFAULT_SETTINGS);
  store.positions = [...all];
  return store.positionsFrom(dayFrom);
}
const ids = (ps: readonly HistoryPosition[]) => [...ps].sort(byTime).map((p) => p.id);

const positionsArb = fc
  .uniqueArray(
    fc.record({ t: fc.integer({ min: 0, max: 120 }), e: fc.integer({ min: 0, max: 2 }), f: fc.nat(FLAGS.length - 1) }),
    { selector: (r) => `${r.t}|${r.e}`, maxLength: 80 },
  )
  .map((rows) =>
    rows.map(
      (r, i): HistoryPosition => ({
        id: i + 1,
        time: r.t * S,
        lat: 54,
        lon: 25,
        speed: 0,
        eventIoId: r.e,
        attributes: {},
        flags: [...FLAGS[r.f]!],
      }),
    ),
  );

describe('WindowCache', () => {
  it('the copy plus a read from the earliest mark equals a whole read of the window', async () => {
    await fc.assert(
      fc.asyncProperty(
        positionsArb,
        fc.option(fc.integer({ min: 0, max: 120 }), { nil: null }),
        fc.integer({ min: 0, max: 120 }),
        fc.integer({ min: 0, max: 120 }),
        fc.array(fc.boolean(), { minLength: 80, maxLength: 80 }),
        async (all, oldDay, sinceAfter, newDayAfter, seenBefore) => {
          // The copy was read when the positions from `since` on were not all there yet.
          const oldDayFrom = oldDay === null ? null : oldDay * S;
          const since = (oldDay ?? 0) * S + sinceAfter * S;
          const newDayFrom = oldDay === null && newDayAfter % 3 === 0 ? null : (oldDay ?? 0) * S + newDayAfter * S;
          const then = all.filter((p, i) => p.time < since || seenBefore[i]);
          const cache = new WindowCache(10_000);
          cache.store(1, 't1', oldDayFrom, await read(then, oldDayFrom));
          if (!cache.covers(1, 't1', since, newDayFrom, 0)) {
            // Refused only where it cannot prove the window: it starts before the copy.
            expect(oldDayFrom !== null && (newDayFrom === null || newDayFrom < oldDayFrom)).toBe(true);
            return;
          }
          const window = cache.window(1, since, await read(all, since), newDayFrom);
          expect(ids(window)).toEqual(ids(await read(all, newDayFrom)));
          expect(window.map((p) => p.id)).toEqual(ids(window));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('serves a copy only to the derivation that stored it, and never from before it', () => {
    const p: HistoryPosition = {
      id: 1,
      time: 10 * S,
      lat: 54,
      lon: 25,
      speed: 0,
      eventIoId: 0,
      attributes: {},
      flags: [],
    };
    const cache = new WindowCache(10);
    const now = 30 * S;
    cache.store(7, 'tx1', 5 * S, [p]);
    expect(cache.covers(7, 'tx1', 20 * S, 5 * S, now)).toBe(true);
    // Holding positions older than retention can have dropped: not used.
    cache.store(7, 'tx1', 5 * S, [p]);
    expect(cache.covers(7, 'tx1', 20 * S, 5 * S, 10 * S + NEVER_DROPPED_MS + 1)).toBe(false);
    cache.store(7, 'tx1', 5 * S, [p]);
    // A mark before the copy's start, or a window starting before it: not provable.
    expect(cache.covers(7, 'tx1', 4 * S, 5 * S, now)).toBe(false);
    cache.store(7, 'tx1', 5 * S, [p]);
    expect(cache.covers(7, 'tx1', 20 * S, 4 * S, now)).toBe(false);
    // Another deriver derived the device since (its transaction is in history_state now): dropped.
    cache.store(7, 'tx1', 5 * S, [p]);
    expect(cache.covers(7, 'tx2', 20 * S, 5 * S, now)).toBe(false);
    expect(cache.covers(7, 'tx1', 20 * S, 5 * S, now)).toBe(false);
    expect(cache.positions).toBe(0);
    // Bounded: the least recently stored device goes first.
    cache.store(
      1,
      'a',
      null,
      Array.from({ length: 6 }, (_, i) => ({ ...p, id: i })),
    );
    cache.store(
      2,
      'b',
      null,
      Array.from({ length: 6 }, (_, i) => ({ ...p, id: i })),
    );
    expect(cache.covers(1, 'a', 0, null, now)).toBe(false);
    expect(cache.covers(2, 'b', 0, null, now)).toBe(true);
    expect(cache.positions).toBe(6);
  });
});
