/**
 * The processor's copy of the key (position-id.ts) against its one definition, position_id() on
 * the real PostgreSQL: equal for every int4 device and event IO id and every fix time whose
 * microseconds fit an int8, including the inputs where the SQL's to_hex/lpad cut digits.
 */
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../../test/support/index.js';
import { MAX_STORABLE_MS } from './flags.js';
import { positionId } from './position-id.js';

const db = useTestDatabase();
let pool: pg.Pool;
beforeAll(() => {
  pool = new pg.Pool({ ...db.connection, max: 1 });
});
afterAll(() => pool?.end());

type Key = [device: number, fixMs: number, eventIoId: number];

/** position_id(device, fix_ms * 1000, event_io_id) as the writer's statement calls it. */
async function sqlIds(keys: readonly Key[]): Promise<string[]> {
  const res = await pool.query<{ id: string }>(
    `SELECT position_id(k.d, k.f * 1000, k.e)::text AS id
       FROM unnest($1::int[], $2::bigint[], $3::int[]) WITH ORDINALITY AS k(d, f, e, n) ORDER BY k.n`,
    [keys.map((k) => k[0]), keys.map((k) => String(k[1])), keys.map((k) => k[2])],
  );
  return res.rows.map((r) => r.id);
}

const int4 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const key: fc.Arbitrary<Key> = fc.tuple(
  fc.oneof(fc.integer({ min: 1, max: 100_000 }), int4),
  fc.oneof(
    fc.integer({ min: 0, max: MAX_STORABLE_MS }),
    fc.maxSafeInteger(),
    fc.integer({ min: -(2 ** 53) + 1, max: 0 }),
  ),
  fc.oneof(fc.integer({ min: 0, max: 65_535 }), int4),
);

describe('positionId', () => {
  it('equals position_id() at the edges where to_hex and lpad cut or wrap', async () => {
    const edges: Key[] = [];
    for (const device of [0, 1, 2 ** 31 - 1, -1, -(2 ** 31)])
      for (const fixMs of [0, 1, MAX_STORABLE_MS, 2 ** 48 - 1, 2 ** 48, -1, Number.MAX_SAFE_INTEGER, -(2 ** 53) + 1])
        for (const ev of [0, 65_535, 2 ** 28 - 1, 2 ** 28, 2 ** 31 - 1, -1, -(2 ** 31)])
          edges.push([device, fixMs, ev]);
    expect(edges.map((k) => positionId(...k))).toEqual(await sqlIds(edges));
  });

  it('equals position_id() for any int4 device and event IO id and any fix time in ms', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(key, { minLength: 1, maxLength: 300 }), async (keys) => {
        expect(keys.map((k) => positionId(...k))).toEqual(await sqlIds(keys));
      }),
      { numRuns: 60 },
    );
  });
});
