/**
 * positions partitioned by time (directus/sql/positions-partitions.sql), against the real
 * PostgreSQL and Directus 12.4: the derived key, partitions ahead and the default partition, the
 * processor's upkeep and retention, Directus serving the table without listing its partitions,
 * and the deploy converting an unpartitioned table that holds data.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maintainPartitions } from '../daemon/src/processor/partitions.js';
import { latestPerDevice, type PositionRow } from '../daemon/src/processor/rows.js';
import { PositionWriter } from '../daemon/src/processor/writer.js';
import { SNAPSHOT_COLLECTIONS } from '../directus/schema/collections.mjs';
import { compareSchema, deploy } from '../directus/src/deploy.mjs';
import {
  createTestDatabase,
  startDirectus,
  TEST_ADMIN,
  type TestDatabase,
  type TestDirectus,
} from './support/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'fleet-partitions-test-'));
let db: TestDatabase;
let directus: TestDirectus;
let pool: pg.Pool;

async function api(path: string, method = 'GET', body?: unknown) {
  const res = await fetch(`${directus.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${directus.adminToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: JSON.parse(await res.text()) };
}

const partitionsOf = async (d: TestDatabase) =>
  (
    await d.knex.raw<{ rows: { name: string; schema: string }[] }>(
      `SELECT c.relname AS name, c.relnamespace::regnamespace::text AS schema
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'positions'::regclass ORDER BY 1`,
    )
  ).rows;

const monthName = (t: Date) => `positions_${t.getUTCFullYear()}_${String(t.getUTCMonth() + 1).padStart(2, '0')}`;
const monthsFromNow = (n: number) => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + n, 10, 12));
};

beforeAll(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ ...db.connection, max: 2 });
  // What a processor does at start: the template may have been built in an earlier month.
  await maintainPartitions(pool, { monthsAhead: 3, retentionMonths: null });
  directus = await startDirectus({ database: db, timeoutMs: 300_000 });
}, 320_000);

afterAll(async () => {
  await directus?.stop();
  await pool?.end();
  await db?.drop();
  rmSync(tmp, { recursive: true, force: true });
});

describe('positions partitioned by time', () => {
  it('derives a time-ordered key one-to-one from (device, fix_time, event_io_id)', async () => {
    const ids = (
      await db.knex.raw<{ rows: { id: string }[] }>(
        `SELECT position_id(d, t::timestamptz, e)::text AS id FROM (VALUES
           (1, '2026-11-25T10:00:00.123Z', 0), (1, '2026-11-25T10:00:00.123Z', 239), (2, '2026-11-25T10:00:00.123Z', 0),
           (1, '2026-11-25T10:00:00.123001Z', 0), (1, '2026-11-25T10:00:00.124Z', 0), (7, '1970-01-01T00:00:00Z', 65535),
           (2147483647, '9999-12-31T23:59:59.999Z', 0)) AS v(d, t, e)`,
      )
    ).rows.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    // The first 48 bits are the fix time in milliseconds: ids sort like their times.
    expect(ids[0]!.replace('-', '').slice(0, 12)).toBe(
      Date.parse('2026-11-25T10:00:00.123Z').toString(16).padStart(12, '0'),
    );
    expect(ids[0]! < ids[3]! && ids[3]! < ids[4]!).toBe(true);
    expect(ids[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/);
    // The writer's form (epoch microseconds) gives the same id.
    const same = await db.knex.raw<{ rows: { same: boolean }[] }>(
      `SELECT position_id(1, ?::bigint * 1000, 0) = position_id(1, ?::timestamptz, 0) AS same`,
      [Date.parse('2026-11-25T10:00:00.123Z'), '2026-11-25T10:00:00.123Z'],
    );
    expect(same.rows[0]!.same).toBe(true);
  });

  it('has a partition for this month and the next ones, in a schema Directus does not list', async () => {
    const parts = await partitionsOf(db);
    expect(parts.every((p) => p.schema === 'partitions')).toBe(true);
    const names = parts.map((p) => p.name);
    for (let i = 0; i <= 3; i++) expect(names).toContain(monthName(monthsFromNow(i)));
    expect(names).toContain('positions_default');

    const collections = (await api('/collections')).body.data.map((c: { collection: string }) => c.collection);
    expect(collections).toContain('positions');
    expect(collections.filter((c: string) => c.startsWith('positions_'))).toEqual([]);
    for (const c of SNAPSHOT_COLLECTIONS) expect(collections).toContain(c);
    const fields = (await api('/fields/positions')).body.data as { field: string; type: string; schema: unknown }[];
    expect(fields.find((f) => f.field === 'id')).toMatchObject({ type: 'uuid', schema: { is_primary_key: true } });
  });

  it("serves over REST what the processor's writer stored, and drops a resent batch on the primary key", async () => {
    const [device] = await db.knex('devices').insert({ imei: '356307042441013', name: 'P' }).returning('id');
    const t = monthsFromNow(0).getTime();
    const row = (fixTime: number, eventIoId = 0): PositionRow => ({
      imei: '356307042441013',
      fixTime,
      receivedAt: fixTime + 500,
      latitude: 54.68,
      longitude: 25.28,
      altitude: 100,
      heading: 90,
      speed: 42,
      satellites: 12,
      priority: 0,
      eventIoId,
      io: '{}',
      attributes: '{}',
      flags: [],
    });
    // Same millisecond twice (two events), last month's, and one for a month without a partition.
    const rows = [row(t), row(t, 239), row(monthsFromNow(-1).getTime()), row(Date.UTC(2041, 4, 3))];
    const ids = new Map([['356307042441013', device.id as number]]);
    const writer = new PositionWriter(pool, 'copy');
    const write = () => writer.write(rows, latestPerDevice(rows), new Map([['356307042441013', t + 500]]), ids);
    expect(await write()).toEqual({ inserted: 4, conflicts: 0 });
    expect(await write()).toEqual({ inserted: 0, conflicts: 4 });

    const where = await db.knex.raw<{ rows: { part: string; n: number }[] }>(
      'SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM positions GROUP BY 1 ORDER BY 1',
    );
    // last month has no partition in a fresh database (only this month and the next ones): it and
    // 2041 wait in the default partition
    expect(where.rows).toContainEqual({ part: 'partitions.positions_default', n: 2 });
    expect(where.rows).toContainEqual({ part: `partitions.${monthName(monthsFromNow(0))}`, n: 2 });

    const res = await api(
      `/items/positions?filter[device][_eq]=${device.id}&sort=-fix_time&fields=id,fix_time,event_io_id`,
    );
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(4);
    expect(new Date(res.body.data[0].fix_time).toISOString()).toBe('2041-05-03T00:00:00.000Z');
    const one = await api(`/items/positions/${res.body.data[1].id}?fields=event_io_id,speed,device.imei`);
    expect(one.body.data).toMatchObject({ speed: 42, device: { imei: '356307042441013' } });
  });

  it('gives a position created through Directus the derived id, and refuses edits of the fields it comes from', async () => {
    const [device] = await db.knex('devices').insert({ imei: '356307042441039', name: 'S' }).returning('id');
    const fixTime = '2026-11-25T10:00:00.123Z';
    const created = await api('/items/positions', 'POST', {
      device: device.id,
      fix_time: fixTime,
      event_io_id: 5,
      speed: 3,
    });
    expect(created.status).toBe(200);
    const expected = await db.knex.raw('SELECT position_id(?::int, ?::timestamptz, 5)::text AS id', [
      device.id,
      fixTime,
    ]);
    expect(created.body.data.id).toBe(expected.rows[0].id);
    // the same record again is a duplicate, whoever writes it
    const again = await api('/items/positions', 'POST', { device: device.id, fix_time: fixTime, event_io_id: 5 });
    expect(again.status).toBe(400);
    expect(again.body.errors[0].extensions.code).toBe('RECORD_NOT_UNIQUE');
    const noTime = await api('/items/positions', 'POST', { device: device.id, speed: 1 });
    expect(noTime.status).toBe(400);
    expect(noTime.body.errors[0].message).toMatch(/fix_time/);

    const moved = await api(`/items/positions/${created.body.data.id}`, 'PATCH', { fix_time: '2026-11-26T10:00:00Z' });
    expect(moved.status).toBe(400);
    expect(moved.body.errors[0].message).toMatch(/fix_time of a position make up its id/);
    const edited = await api(`/items/positions/${created.body.data.id}`, 'PATCH', { speed: 4 });
    expect(edited.status).toBe(200);
    expect(edited.body.data).toMatchObject({ speed: 4, fix_time: expect.any(String) });
  });

  it('moves rows out of the default partition when their month gets one, and drops old months on retention', async () => {
    const [device] = await db.knex('devices').insert({ imei: '356307042441021', name: 'R' }).returning('id');
    const old = monthsFromNow(-8);
    const future = new Date(Date.UTC(2039, 1, 1, 8));
    for (const t of [old, future]) {
      await db.knex.raw(
        'INSERT INTO positions (id, device, fix_time) VALUES (position_id(?::int, ?::timestamptz, 0), ?, ?)',
        [device.id, t, device.id, t],
      );
    }
    await db.knex('events').insert({ device: device.id, time: old, type: 'ignition_on' });
    await db.knex('trips').insert({ device: device.id, start_time: old, end_time: old });
    expect(
      (await db.knex.raw(`SELECT positions_create_partition('2039-02-01')`)).rows[0].positions_create_partition,
    ).toBe(true);
    const part = await db.knex.raw('SELECT tableoid::regclass::text AS p FROM positions WHERE fix_time = ?', [future]);
    expect(part.rows[0].p).toBe('partitions.positions_2039_02');
    // The old row sits in the default partition (no partition for that month): give it one first.
    await db.knex.raw('SELECT positions_create_partition(?::timestamp)', [old.toISOString().slice(0, 10)]);

    // The processor's upkeep: nothing to create (the deploy did), and with a retention of 3 months
    // the 8-month-old partition goes, along with its positions only.
    const kept = await maintainPartitions(pool, { monthsAhead: 3, retentionMonths: null });
    expect(kept).toEqual({ created: 0, dropped: [] });
    const r = await maintainPartitions(pool, { monthsAhead: 4, retentionMonths: 3 });
    expect(r.created).toBe(1);
    expect(r.dropped).toContain(monthName(old));
    expect(r.dropped).not.toContain(monthName(monthsFromNow(-1)));
    const names = (await partitionsOf(db)).map((p) => p.name);
    expect(names).toContain(monthName(monthsFromNow(4)));
    expect(names).toContain('positions_default');
    expect(await db.knex('positions').where({ device: device.id }).count({ n: '*' })).toEqual([{ n: '1' }]);
    expect(await db.knex('events').where({ device: device.id }).count({ n: '*' })).toEqual([{ n: '1' }]);
    expect(await db.knex('trips').where({ device: device.id }).count({ n: '*' })).toEqual([{ n: '1' }]);
  });
});

describe('deploy on an unpartitioned positions table', () => {
  let legacy: TestDatabase;
  beforeAll(async () => {
    legacy = await createTestDatabase();
  });
  afterAll(async () => legacy?.drop());

  it('converts it without losing or duplicating a row, keeps events pointing at their positions, and is idempotent', async () => {
    // The layout of earlier versions: bigint ids from a sequence, the natural key as a unique
    // index, events.position a bigint.
    const fk = (
      await legacy.knex.raw(
        `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'positions'::regclass AND contype = 'f'`,
      )
    ).rows[0] as { conname: string; def: string };
    await legacy.knex.raw(`
      CREATE TABLE legacy (LIKE positions INCLUDING DEFAULTS);
      DROP TABLE positions;
      ALTER TABLE legacy RENAME TO positions;
      ALTER TABLE positions DROP COLUMN id;
      ALTER TABLE positions ADD COLUMN id bigserial CONSTRAINT positions_pkey PRIMARY KEY;
      ALTER TABLE positions ADD CONSTRAINT ${fk.conname} ${fk.def};
      CREATE UNIQUE INDEX positions_device_fix_time_event_key ON positions (device, fix_time, event_io_id);
      ALTER TABLE events ALTER COLUMN position TYPE bigint USING NULL;
      INSERT INTO devices (imei, name) VALUES ('356307042441013', 'a'), ('356307042441021', 'b'), ('356307042441039', 'c');
      INSERT INTO positions (device, fix_time, location, speed, event_io_id, flags)
        SELECT d.id, timestamptz '2026-06-01' + g * interval '17 minutes' + (g % 7) * interval '1 millisecond',
               ST_SetSRID(ST_MakePoint(25 + g * 0.0001, 54), 4326), g % 90, 0, '[]'
          FROM devices d, generate_series(1, 1500) g;
      -- two events in one millisecond, a no-fix record from 1970 and a folded far-future one
      INSERT INTO positions (device, fix_time, event_io_id, speed)
        SELECT id, t::timestamptz, e, 1 FROM devices,
          (VALUES ('2026-07-04T10:00:00.5Z', 0), ('2026-07-04T10:00:00.5Z', 239), ('1970-01-01T00:00:00Z', 0), ('9500-01-01T00:00:00Z', 0)) v(t, e)
         WHERE imei = '356307042441013';
      INSERT INTO events (device, time, type, "position") SELECT device, fix_time, 'test', id FROM positions WHERE id % 97 = 0;
    `);
    const snapshot = async () => ({
      positions: (
        await legacy.knex.raw(
          `SELECT device, (extract(epoch FROM fix_time) * 1000000)::bigint::text AS us, event_io_id, speed, ST_AsText(location) AS loc
             FROM positions ORDER BY 1, 2, 3`,
        )
      ).rows,
      events: (
        await legacy.knex.raw(
          `SELECT e.id, p.device, p.fix_time, p.event_io_id FROM events e JOIN positions p ON p.id = e."position" ORDER BY e.id`,
        )
      ).rows,
    });
    const before = await snapshot();
    expect(before.positions).toHaveLength(4504);
    expect(before.events.length).toBeGreaterThan(40);

    const steps: string[] = [];
    const stateDir = mkdtempSync(join(tmp, 'state-'));
    await deploy({ connection: legacy.connection, admin: TEST_ADMIN, stateDir, log: (s) => steps.push(s) });
    expect(steps.slice(1, 3)).toEqual(['positions partitioned', 'directus bootstrap']);

    const kind = await legacy.knex.raw(`SELECT relkind FROM pg_class WHERE oid = 'positions'::regclass`);
    expect(kind.rows[0].relkind).toBe('p');
    const after = await snapshot();
    expect(after).toEqual(before);
    const distinct = await legacy.knex.raw('SELECT count(*)::int AS n, count(DISTINCT id)::int AS ids FROM positions');
    expect(distinct.rows[0]).toEqual({ n: 4504, ids: 4504 });
    const parts = new Map(
      (
        await legacy.knex.raw<{ rows: { p: string; n: number }[] }>(
          'SELECT tableoid::regclass::text AS p, count(*)::int AS n FROM positions GROUP BY 1',
        )
      ).rows.map((r) => [r.p, r.n]),
    );
    expect(parts.get('partitions.positions_default')).toBe(2);
    expect(parts.get('partitions.positions_2026_06')).toBeGreaterThan(0);
    // The Directus side agrees with the snapshot (no leftover of the bigint id or the old index).
    expect((await compareSchema({ connection: legacy.connection, stateDir })).inSync).toBe(true);

    await deploy({ connection: legacy.connection, admin: TEST_ADMIN, stateDir });
    expect(await snapshot()).toEqual(before);
  }, 600_000);
});
