/**
 * The deriver's measurement cache against PostGIS: a cached position is not measured again, and
 * any change to the geofences (insert, update, delete) drops what was cached.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/index.js';
import type { HistoryPosition } from '../history/types.js';
import { MeasurementCache } from './geofence-deriver.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const fix = (id: number, lon: number): HistoryPosition => ({
  id,
  time: id * 1000,
  lat: 54.69,
  lon,
  speed: 30,
  eventIoId: 0,
  attributes: {},
  flags: [],
});
const box = (name: string, west: number, east: number) =>
  db.knex
    .raw<{ rows: Array<{ id: number }> }>(
      `INSERT INTO geofences (name, area, active) VALUES (?, ST_MakeEnvelope(?, 54.688, ?, 54.692, 4326), true) RETURNING id`,
      [name, west, east],
    )
    .then((r) => Number(r.rows[0]!.id));

it('measures a stored position once per version of the geofences', async () => {
  const cache = new MeasurementCache(1000, 0);
  const a = await box('A', 25.278, 25.29);
  const fixes = [fix(1, 25.28), fix(2, 25.3)];
  const inTrx = <T>(fn: (trx: Parameters<MeasurementCache['validate']>[0]) => Promise<T>) => db.knex.transaction(fn);

  const first = await inTrx(async (trx) => {
    await cache.validate(trx);
    return cache.measure(trx, fixes, 15);
  });
  expect([...first.distances[0]!.keys()]).toEqual([a]);
  expect(first.distances[0]!.get(a)!).toBeLessThan(0);
  expect(first.distances[1]!.size).toBe(0);
  expect(first.fences.get(a)).toMatchObject({ name: 'A' });
  expect(cache.size).toBe(2);

  // Unchanged fences: the cached answer itself (no new measurement).
  const again = await inTrx(async (trx) => {
    await cache.validate(trx);
    return cache.measure(trx, fixes, 15);
  });
  expect(again.distances[0]).toBe(first.distances[0]);

  // A new fence covering the second fix: the cache is dropped and both are measured again.
  const b = await box('B', 25.295, 25.31);
  const after = await inTrx(async (trx) => {
    await cache.validate(trx);
    return cache.measure(trx, fixes, 15);
  });
  expect(after.distances[0]).not.toBe(first.distances[0]);
  expect([...after.distances[1]!.keys()]).toEqual([b]);

  // Renaming (an update) and deleting are changes too.
  await db.knex('geofences').where({ id: a }).update({ name: 'A2' });
  const renamed = await inTrx(async (trx) => {
    await cache.validate(trx);
    return cache.measure(trx, fixes, 15);
  });
  expect(renamed.fences.get(a)).toMatchObject({ name: 'A2' });
  await db.knex('geofences').where({ id: b }).delete();
  const deleted = await inTrx(async (trx) => {
    await cache.validate(trx);
    return cache.measure(trx, fixes, 15);
  });
  expect(deleted.distances[1]!.size).toBe(0);
});

it('measures nothing while no geofence is active, and sees the first one on the next check however soon', async () => {
  await db.knex('geofences').delete();
  const cache = new MeasurementCache(1000, 3_600_000);
  const inTrx = <T>(fn: (trx: Parameters<MeasurementCache['validate']>[0]) => Promise<T>) => db.knex.transaction(fn);
  await inTrx((trx) => cache.validate(trx));
  expect(cache.anyActive).toBe(false);

  const a = await box('C', 25.278, 25.29);
  await inTrx((trx) => cache.validate(trx));
  expect(cache.anyActive).toBe(true);
  const measured = await inTrx((trx) => cache.measure(trx, [fix(3, 25.28)], 15));
  expect([...measured.distances[0]!.keys()]).toEqual([a]);

  await db.knex('geofences').where({ id: a }).update({ active: false });
  await inTrx((trx) => cache.validate(trx, Date.now() + 3_600_000));
  expect(cache.anyActive).toBe(false);
});
