/**
 * The row writer's three ways of handing rows to PostgreSQL (unnest parameters, COPY into a staging
 * table, COPY straight into positions falling back to the staging table) against a real
 * PostgreSQL/PostGIS database with the Directus schema: the same batch gives the same stored rows,
 * device state and history marks, conflicts are counted, and a failed batch leaves nothing.
 */
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/index.js';
import { newImei } from '../../test/processor/support.js';
import { copyBinary, idEncoder } from './copy-binary.js';
import { latestPerDevice, type PositionRow } from './rows.js';
import { type DeviceId, PositionWriter, STAGE_COPY, stageTableStatement, type WriteMethod } from './writer.js';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ ...db.connection, max: 2 });
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

async function addDevice(): Promise<{ imei: string; id: DeviceId }> {
  const imei = newImei();
  const [row] = await db.knex('devices').insert({ imei, name: imei, enabled: true }).returning('id');
  return { imei, id: row.id };
}

/** Text that COPY's text format would misread if it were not escaped. */
const AWKWARD = JSON.stringify({ note: 'tab\there, newline\nthere, back\\slash, "quoted", \\N, ünïcödé ✓' });

function row(imei: string, i: number, over: Partial<PositionRow> = {}): PositionRow {
  return {
    imei,
    fixTime: Date.UTC(2026, 10, 1, 8, 0, i),
    receivedAt: Date.UTC(2026, 10, 1, 9, 0, 0) + i,
    latitude: 54.6872 + i * 1e-7,
    longitude: 25.2797 - i * 1e-7,
    altitude: -12,
    heading: 359,
    speed: 0,
    satellites: 0,
    priority: 2,
    eventIoId: i % 2 === 0 ? 0 : 247,
    io: JSON.stringify({ 239: 1, 16: 2 ** 40 + i }),
    attributes: i === 1 ? AWKWARD : JSON.stringify({ ignition: true }),
    flags: i === 2 ? ['future'] : [],
    ...over,
  };
}

async function stored(device: DeviceId) {
  const positions = await db.knex.raw(
    `SELECT (extract(epoch FROM fix_time) * 1000)::float8 AS fix, (extract(epoch FROM received_at) * 1000)::float8 AS recv,
            ST_X(location) AS lon, ST_Y(location) AS lat, altitude, heading, speed, satellites, priority, event_io_id,
            io::text AS io, attributes::text AS attributes, flags::text AS flags
       FROM positions WHERE device = ? ORDER BY fix_time, event_io_id`,
    [device],
  );
  const dev = await db.knex.raw(
    `SELECT (extract(epoch FROM last_fix_at) * 1000)::float8 AS fix, (extract(epoch FROM last_seen_at) * 1000)::float8 AS seen,
            ST_X(last_location) AS lon, ST_Y(last_location) AS lat, last_speed, last_heading, last_attributes::text AS attrs
       FROM devices WHERE id = ?`,
    [device],
  );
  return { positions: positions.rows as Record<string, unknown>[], device: dev.rows[0] as Record<string, unknown> };
}

async function writeWith(method: WriteMethod, imei: string, id: DeviceId, rows: PositionRow[]) {
  const writer = new PositionWriter(pool, method);
  const seen = new Map([[imei, Math.max(...rows.map((r) => r.receivedAt))]]);
  return writer.write(rows, latestPerDevice(rows), seen, new Map([[imei, id]]));
}

/** A device's history marks: [from, to, received_from] in epoch ms, oldest first. */
async function marks(device: DeviceId): Promise<number[][]> {
  const res = await pool.query(
    `SELECT (extract(epoch FROM from_time) * 1000)::float8 AS f, (extract(epoch FROM to_time) * 1000)::float8 AS t,
            (extract(epoch FROM received_from) * 1000)::float8 AS r
       FROM history_dirty WHERE device = $1 ORDER BY marked_at, from_time`,
    [device],
  );
  return res.rows.map((x) => [x.f, x.t, x.r]);
}

describe('PositionWriter methods', () => {
  it('stores the same rows, device state and marks through either COPY as through unnest, byte for byte', async () => {
    const a = await addDevice();
    const b = await addDevice();
    const c = await addDevice();
    const rowsA = Array.from({ length: 6 }, (_, i) => row(a.imei, i));
    const rowsB = Array.from({ length: 6 }, (_, i) => row(b.imei, i));
    const rowsC = Array.from({ length: 6 }, (_, i) => row(c.imei, i));
    expect(await writeWith('unnest', a.imei, a.id, rowsA)).toEqual({ inserted: 6, conflicts: 0 });
    expect(await writeWith('copy', b.imei, b.id, rowsB)).toEqual({ inserted: 6, conflicts: 0 });
    expect(await writeWith('direct', c.imei, c.id, rowsC)).toEqual({ inserted: 6, conflicts: 0 });
    const sa = await stored(a.id);
    const sb = await stored(b.id);
    expect(sb).toEqual(sa);
    expect(await stored(c.id)).toEqual(sa);
    expect(await marks(c.id)).toEqual(await marks(a.id));
    expect(await marks(c.id)).toEqual([[rowsC[0]!.fixTime, rowsC[5]!.fixTime, rowsC[0]!.receivedAt]]);
    // The same key as position_id() gives (position-id.test.ts proves it for all inputs).
    const keys = await pool.query(
      `SELECT count(*)::int AS n FROM positions WHERE device = $1 AND id = position_id(device, fix_time, event_io_id)`,
      [c.id],
    );
    expect(keys.rows[0].n).toBe(6);
    expect(sb.positions).toHaveLength(6);
    expect(JSON.parse(String(sb.positions[1]?.attributes))).toEqual(JSON.parse(AWKWARD));
    expect(sb.positions[2]?.flags).toBe('["future"]');
    expect(sb.positions[0]?.flags).toBeNull();
    expect(sb.positions[0]?.altitude).toBe(-12);
    // The latest good fix (row 5; row 2 is flagged but older anyway) became the device state.
    expect(sb.device.fix).toBe(rowsB[5]?.fixTime);
  });

  it('counts rows already stored as conflicts and adds nothing twice, on a reused connection', async () => {
    const d = await addDevice();
    const rows = Array.from({ length: 4 }, (_, i) => row(d.imei, i));
    expect(await writeWith('copy', d.imei, d.id, rows)).toEqual({ inserted: 4, conflicts: 0 });
    // Same batch plus one new row: the staging table was emptied at the last commit.
    const again = [...rows, row(d.imei, 10)];
    expect(await writeWith('copy', d.imei, d.id, again)).toEqual({ inserted: 1, conflicts: 4 });
    expect(await writeWith('unnest', d.imei, d.id, again)).toEqual({ inserted: 0, conflicts: 5 });
    expect((await stored(d.id)).positions).toHaveLength(5);
  });

  it('leaves nothing behind when the database rejects the batch, and the connection stays usable', async () => {
    const d = await addDevice();
    const bad = [row(d.imei, 0), row(d.imei, 1, { satellites: 2 ** 40 })]; // out of int range
    await expect(writeWith('copy', d.imei, d.id, bad)).rejects.toThrow(/out of range/);
    expect((await stored(d.id)).positions).toHaveLength(0);
    expect(await writeWith('copy', d.imei, d.id, [row(d.imei, 0)])).toEqual({ inserted: 1, conflicts: 0 });
  });

  it('refuses a value out of its column range as data (SQLSTATE class 22) before anything is sent', async () => {
    const d = await addDevice();
    for (const method of ['copy', 'direct'] as const) {
      for (const bad of [{ heading: 1.5 }, { eventIoId: 2 ** 40 }, { fixTime: Number.NaN }]) {
        const err = await writeWith(method, d.imei, d.id, [row(d.imei, 0), row(d.imei, 1, bad)]).catch((e) => e);
        expect(err).toMatchObject({ code: '22003' });
      }
    }
    expect((await stored(d.id)).positions).toHaveLength(0);
  });
});

describe('the direct method: COPY into positions, the staging table when a row is already stored', () => {
  const write = (writer: PositionWriter, rows: PositionRow[], ids: Map<string, DeviceId>) =>
    writer.write(
      rows,
      latestPerDevice(rows),
      new Map(rows.map((r) => [r.imei, Math.max(...rows.filter((x) => x.imei === r.imei).map((x) => x.receivedAt))])),
      ids,
    );

  it('a batch repeating one of its own rows falls back and stores it once, marking what was inserted', async () => {
    const d = await addDevice();
    const rows = Array.from({ length: 5 }, (_, i) => row(d.imei, i));
    const res = await writeWith('direct', d.imei, d.id, [...rows, { ...rows[3]! }]);
    expect(res).toEqual({ inserted: 5, conflicts: 1, fellBack: true });
    expect((await stored(d.id)).positions).toHaveLength(5);
    expect(await marks(d.id)).toEqual([[rows[0]!.fixTime, rows[4]!.fixTime, rows[0]!.receivedAt]]);
  });

  it('a replayed batch adds nothing and marks nothing; a batch with old and new rows marks only the new', async () => {
    const d = await addDevice();
    const rows = Array.from({ length: 4 }, (_, i) => row(d.imei, i));
    expect(await writeWith('direct', d.imei, d.id, rows)).toEqual({ inserted: 4, conflicts: 0 });
    const before = await stored(d.id);
    expect(await writeWith('direct', d.imei, d.id, rows)).toEqual({ inserted: 0, conflicts: 4, fellBack: true });
    expect(await stored(d.id)).toEqual(before);
    expect(await marks(d.id)).toHaveLength(1);
    const newer = row(d.imei, 10);
    expect(await writeWith('direct', d.imei, d.id, [...rows, newer])).toEqual({
      inserted: 1,
      conflicts: 4,
      fellBack: true,
    });
    expect((await marks(d.id))[1]).toEqual([newer.fixTime, newer.fixTime, newer.receivedAt]);
    expect((await stored(d.id)).device.fix).toBe(newer.fixTime);
    // The connection is back to the fast path after a fallback.
    expect(await writeWith('direct', d.imei, d.id, [row(d.imei, 11)])).toEqual({ inserted: 1, conflicts: 0 });
  });

  it('latest state never moves back when an older batch comes after a newer one, either path', async () => {
    const d = await addDevice();
    const writer = new PositionWriter(pool, 'direct');
    const ids = new Map([[d.imei, d.id]]);
    await write(writer, [row(d.imei, 20)], ids);
    expect(await write(writer, [row(d.imei, 5)], ids)).toEqual({ inserted: 1, conflicts: 0 });
    expect(await write(writer, [row(d.imei, 20), row(d.imei, 6)], ids)).toMatchObject({ inserted: 1, fellBack: true });
    expect((await stored(d.id)).device.fix).toBe(row(d.imei, 20).fixTime);
    expect((await stored(d.id)).positions).toHaveLength(3);
  });

  it('rows of a device deleted meanwhile fail the batch as a foreign-key violation, leaving nothing, on either path', async () => {
    const kept = await addDevice();
    const gone = await addDevice();
    const writer = new PositionWriter(pool, 'direct');
    const ids = new Map([
      [kept.imei, kept.id],
      [gone.imei, gone.id],
    ]);
    const old = row(kept.imei, 0);
    expect(await write(writer, [old], ids)).toEqual({ inserted: 1, conflicts: 0 });
    await db.knex('devices').where({ id: gone.id }).delete();
    const fresh = [row(kept.imei, 1), row(gone.imei, 1)];
    // New rows only: the direct COPY itself meets the violation.
    await expect(write(writer, fresh, ids)).rejects.toMatchObject({ code: '23503' });
    // With a row already stored: the fallback meets it.
    await expect(write(writer, [old, ...fresh], ids)).rejects.toMatchObject({ code: '23503' });
    expect((await stored(kept.id)).positions).toHaveLength(1);
    expect(await marks(kept.id)).toHaveLength(1);
    expect(await write(writer, [row(kept.imei, 1)], new Map([[kept.imei, kept.id]]))).toEqual({
      inserted: 1,
      conflicts: 0,
    });
  });

  it('two writers racing on the same new rows store each once', async () => {
    const d = await addDevice();
    const ids = new Map([[d.imei, d.id]]);
    const rows = Array.from({ length: 50 }, (_, i) => row(d.imei, i));
    const racing = new pg.Pool({ ...db.connection, max: 2 });
    try {
      const [x, y] = await Promise.all([
        write(new PositionWriter(racing, 'direct'), rows, ids),
        write(new PositionWriter(racing, 'direct'), rows, ids),
      ]);
      expect(x.inserted + y.inserted).toBe(50);
      expect((await stored(d.id)).positions).toHaveLength(50);
      expect(await marks(d.id)).toHaveLength(1);
    } finally {
      await racing.end();
    }
  });
});

describe('binary COPY into the staging table', () => {
  // Every devices.id type the writer accepts, with values at the edges of what each holds.
  const cases: Array<[string, DeviceId]> = [
    ['integer', 2_147_483_647],
    ['smallint', -7],
    ['bigint', '9007199254740993'],
    ['uuid', '1f0e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'],
    ['text', 'device ✓ 7'],
    ['character varying', 'abc'],
  ];
  for (const [idType, id] of cases) {
    it(`PostgreSQL reads back every field as written (devices.id ${idType})`, async () => {
      const rows = [row('a', 1, { fixTime: 2 ** 52 + 1, longitude: -179.9999999 }), row('a', 2)];
      const client = new pg.Client(db.connection);
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query(stageTableStatement(idType));
        await pipeline([copyBinary(rows, () => id, idEncoder(idType))], client.query(copyFrom(STAGE_COPY)));
        const res = await client.query(
          `SELECT device::text, fix_ms::text, recv_ms::text, lon, lat, altitude, heading, speed, satellites, priority,
                  event_io_id, io, attributes, flags FROM fleet_positions_stage ORDER BY fix_ms`,
        );
        await client.query('ROLLBACK');
        expect(res.rows).toEqual(
          [...rows]
            .sort((a, b) => a.fixTime - b.fixTime)
            .map((r) => ({
              device: String(id),
              fix_ms: String(r.fixTime),
              recv_ms: String(r.receivedAt),
              lon: r.longitude,
              lat: r.latitude,
              altitude: r.altitude,
              heading: r.heading,
              speed: r.speed,
              satellites: r.satellites,
              priority: r.priority,
              event_io_id: r.eventIoId,
              io: r.io,
              attributes: r.attributes,
              flags: r.flags.length > 0 ? JSON.stringify(r.flags) : null,
            })),
        );
      } finally {
        await client.end();
      }
    });
  }
});
