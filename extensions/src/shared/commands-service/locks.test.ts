// Device locks against a real PostgreSQL: two DeviceLocks on their own pools stand for two
// Directus instances of one deployment.
import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/index.js';
import { DeviceLocks } from './locks';

let db: TestDatabase;
let other: Knex;
let a: DeviceLocks;
let b: DeviceLocks;
let device: number;
let command: number;

beforeAll(async () => {
  db = await createTestDatabase();
  other = knexFactory({ client: 'pg', connection: db.connection, pool: { min: 0, max: 2 } });
  a = new DeviceLocks(db.knex);
  b = new DeviceLocks(other);
  const [d] = await db.knex('devices').insert({ imei: '356307042441013', name: 'Van 1' }).returning(['id']);
  device = Number(d.id);
  const [c] = await db.knex('commands').insert({ device, text: 'getinfo', status: 'pending' }).returning(['id']);
  command = Number(c.id);
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await other?.destroy();
  await db?.drop();
});

const statusRead = (knex: Knex) => () => [knex('commands').where('id', command).select('status')];

describe('DeviceLocks', () => {
  it('lets one holder in at a time, and the next one reads what the previous one committed', async () => {
    const order: string[] = [];
    let second: Promise<unknown> | undefined;
    const first = a.run(device, statusRead(db.knex), async ([rows]) => {
      order.push('a in');
      expect(rows).toEqual([{ status: 'pending' }]);
      // The other instance asks while this one holds the lock: it must wait for the release.
      second = b.run(device, statusRead(other), async ([seen]) => {
        order.push('b in');
        return seen;
      });
      await db.knex('commands').where('id', command).update({ status: 'queued' });
      order.push('a wrote');
    });
    await first;
    const seen = await second;
    // b enters only after a's holder has finished. Whether the test sees `first` settle before b
    // enters is a race between two connections' replies to the release, not part of the promise.
    expect(order).toEqual(['a in', 'a wrote', 'b in']);
    // Read in the round trip that took the lock, so after the first holder's commit.
    expect(seen).toEqual([{ status: 'queued' }]);
  });

  it('serialises callers of one process on the same device, in call order', async () => {
    const order: number[] = [];
    await Promise.all(
      [1, 2, 3].map((n) =>
        a.run(
          device,
          () => [],
          async () => {
            order.push(n);
            await new Promise((r) => setImmediate(r));
            order.push(n);
          },
        ),
      ),
    );
    expect(order).toEqual([1, 1, 2, 2, 3, 3]);
  });

  it('gives the reads one result each, also for a key written as text', async () => {
    const [statuses, devices] = await a.run(
      String(device),
      () => [
        db.knex('commands').where('id', command).select('status'),
        db.knex('devices').where('id', String(device)).select('imei'),
      ],
      async (rows) => rows,
    );
    expect(statuses).toHaveLength(1);
    expect(devices).toEqual([{ imei: '356307042441013' }]);
  });
});
