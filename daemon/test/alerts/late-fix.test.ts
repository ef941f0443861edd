/**
 * A fix committed after later ones (the processor writes batches concurrently) re-times a state
 * change: the window derived without it confirmed the entry at a later fix than the re-derivation
 * does. The rule still fires once for that entry, and again for a real next one. Rows go through
 * the processor's writer and the history worker's batch with alerting's extensions.
 */
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/index.js';
import { benchRow, writeRows } from '../../bench/rows.js';
import { alertingExtensions } from '../../src/alerts/history-extensions.js';
import { loadConfig } from '../../src/config.js';
import { deriveBatch } from '../../src/history/worker.js';
import { PositionWriter } from '../../src/processor/writer.js';
import { newImei } from '../processor/support.js';
import { addDevice, addFence, addRule } from './support.js';

let db: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = new pg.Pool({ ...db.connection, max: 1 });
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

it('an entry re-timed by a late fix fires its rule once; the next entry fires again', async () => {
  const imei = newImei();
  const device = await addDevice(db.knex, imei, 'late');
  const fence = await addFence(db.knex, 'yard', [25.0, 54.0, 25.01, 54.01]);
  const rule = await addRule(db.knex, {
    name: 'yard entry',
    type: 'geofence_enter',
    geofence: fence,
    devices: [imei],
    webhook_url: 'http://127.0.0.1:9/hook',
    webhook_secret: 's',
  });
  const writer = new PositionWriter(pool, 'copy');
  const ids = new Map([[imei, device]]);
  const extensions = alertingExtensions(loadConfig({ DB_DATABASE: db.connection.database, ALERT_RULES_TTL_MS: '0' }));
  const t0 = Date.now() - 10 * 60_000;
  const fix = (s: number, inside: boolean) =>
    benchRow({
      imei,
      fixTime: t0 + s * 1000,
      receivedAt: Date.now(),
      latitude: 54.005,
      longitude: inside ? 25.005 : 24.99,
      speed: 30,
      io: JSON.stringify({ 239: 1, 240: 1 }),
      attributes: JSON.stringify({ ignition: true, movement: true }),
    });
  const derive = async (...rows: ReturnType<typeof fix>[]) => {
    await writeRows(writer, rows, ids);
    await deriveBatch(db.knex, [device], 'marks', extensions);
  };
  const alerts = async () =>
    (
      await db.knex.raw<{ rows: Array<{ ms: number; deliveries: number }> }>(
        `SELECT (extract(epoch FROM a.event_time) * 1000)::float8 AS ms,
                (SELECT count(*)::int FROM alert_deliveries d WHERE d.alert = a.id) AS deliveries
           FROM alerts a WHERE a.rule = ? ORDER BY a.event_time`,
        [rule],
      )
    ).rows;
  const entries = async () =>
    (
      await db.knex.raw<{ rows: Array<{ ms: number }> }>(
        `SELECT (extract(epoch FROM time) * 1000)::float8 AS ms FROM events
          WHERE device = ? AND type = 'geofence_enter' ORDER BY time`,
        [device],
      )
    ).rows.map((r) => r.ms);

  // Outside, then two fixes inside: the entry is confirmed at the second (t+30 s).
  await derive(fix(0, false), fix(5, false), fix(20, true), fix(30, true));
  expect(await entries()).toEqual([t0 + 30_000]);
  expect(await alerts()).toEqual([{ ms: t0 + 30_000, deliveries: 1 }]);

  // The fix of t+10 s (inside) arrives late: from scratch the entry is confirmed at t+20 s.
  await derive(fix(10, true));
  expect(await entries()).toEqual([t0 + 20_000]);
  expect(await alerts()).toEqual([{ ms: t0 + 30_000, deliveries: 1 }]);

  // Out and back in: a new entry, a new alert.
  await derive(fix(40, false), fix(50, false), fix(60, true), fix(70, true));
  expect(await entries()).toEqual([t0 + 20_000, t0 + 70_000]);
  expect(await alerts()).toEqual([
    { ms: t0 + 30_000, deliveries: 1 },
    { ms: t0 + 70_000, deliveries: 1 },
  ]);
});
