/**
 * The row writer's two ways of handing rows to PostgreSQL (unnest parameters, COPY into a staging
 * table) against a real PostgreSQL/PostGIS database with the Directus schema: the same batch gives
 * the same stored rows and device state, conflicts are counted, and a failed batch leaves nothing.
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

describe('PositionWriter methods', () => {
  it('stores the same rows and device state through COPY as through unnest, byte for byte', async () => {
    const a = await addDevice();
    const b = await addDevice();
    const rowsA = Array.from({ length: 6 }, (_, i) => row(a.imei, i));
    const rowsB = Array.from({ length: 6 }, (_, i) => row(b.imei, i));
    expect(await writeWith('unnest', a.imei, a.id, rowsA)).toEqual({ inserted: 6, conflicts: 0 });
    expect(await writeWith('copy', b.imei, b.id, rowsB)).toEqual({ inserted: 6, conflicts: 0 });
    const sa = await stored(a.id);
    const sb = await stored(b.id);
    expect(sb).toEqual(sa);
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
    const err = await writeWith('copy', d.imei, d.id, [row(d.imei, 0, { heading: 1.5 })]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '22003' });
    expect((await stored(d.id)).positions).toHaveLength(0);
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
