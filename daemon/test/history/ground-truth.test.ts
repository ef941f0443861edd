/**
 * The real path with a known ground truth: a simulated FMB drives a scripted day (simulated fix
 * times) → ingestion (TCP) → processor (positions + history marks) → history worker → Directus
 * REST as the admin. Frames are delivered out of order (the device "flushes its buffer" late),
 * and the rows must be exactly the expected trips, stops and events, equal to a from-scratch
 * derivation of the stored positions; re-deriving changes nothing; registered event derivers and
 * after-events hooks run in the derivation and never see an event twice.
 */
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startDirectus,
  startTestStack,
  type TestDatabase,
  type TestDirectus,
  type TestRedis,
  type TestStack,
} from '../../../test/support/index.js';
import { deriveWindow } from '../../src/history/derive.js';
import type { HistoryExtensions, StoredEvent } from '../../src/history/hooks.js';
import { deriveRange, runDerive } from '../../src/history/main.js';
import { DEFAULT_SETTINGS } from '../../src/history/settings.js';
import { SqlHistoryReader } from '../../src/history/store.js';
import { NO_PRIOR } from '../../src/history/types.js';
import { runProcess } from '../../src/processor/main.js';
import { SimulatedDevice } from '../../src/simulator/device.js';
import { GROUND_TRUTH_PHASES, scenarioRecords } from '../../src/simulator/scenario.js';
import { processorConfig, silentLogger, startPipelineIngestion, waitFor } from '../processor/support.js';

const IMEI = '356307042441013';
// Two days ago, 10:00 UTC: simulated time, one local day in UTC.
const T0 = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() - 2, 10, 0, 0);

let db: TestDatabase;
let r: TestRedis;
let directus: TestDirectus | undefined;
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack();
  ({ db, redis: r } = stack);
});
afterAll(() => stack?.stop());

async function api<T>(
  path: string,
  init: RequestInit = {},
  token = directus!.adminToken,
): Promise<{ status: number; body: T }> {
  const res = await fetch(`${directus!.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as T };
}

// biome-ignore lint/suspicious/noExplicitAny: JSON rows from the REST API, checked field by field
type Item = Record<string, any>;

const ms = (iso: string | null) => (iso === null ? null : Date.parse(iso));

async function settle(knex: Knex) {
  await waitFor(
    'the history worker to handle every mark',
    async () => (await knex('history_dirty').count<{ count: string }[]>('* as count'))[0]!.count === '0',
    60_000,
  );
}

describe('history ground truth', () => {
  it('a scripted drive delivered out of order gives exactly the expected trips, stops and events in Directus', async () => {
    const [{ id: deviceId }] = await db
      .knex('devices')
      .insert({ imei: IMEI, name: 'Truck 12', enabled: true })
      .returning('id');
    const config = processorConfig(db.connection, r.url, r.prefix, {
      HISTORY_METRICS_PORT: '0',
      HISTORY_POLL_MS: '50',
    });
    stack.started(await runProcess(config, silentLogger), (p) => p.stop());
    const inserted: StoredEvent[] = [];
    const extensions: HistoryExtensions = {
      // Stand-ins for geofence events and an alert outbox (issue 12's seam): one marker per trip.
      eventDerivers: [
        {
          name: 'marker',
          derive: ({ derived }) =>
            derived.trips.map((t) => ({
              time: t.startTime,
              type: 'test_marker',
              key: 'k1',
              location: t.start,
              attributes: {},
              position: null,
            })),
        },
      ],
      afterEvents: [async (_trx, changes) => void inserted.push(...changes.flatMap((c) => c.inserted))],
    };
    stack.started(await runDerive(config, silentLogger, { extensions }), (w) => w.stop());
    const ingestion = stack.started(await startPipelineIngestion(db.knex, r, 'history-ingest'), (i) => i.stop());
    const sim = stack.started(new SimulatedDevice({ imei: IMEI, host: '127.0.0.1', port: ingestion.tcpPort }), (d) =>
      d.close(),
    );
    expect(await sim.connect()).toBe(true);

    const scenario = scenarioRecords(GROUND_TRUTH_PHASES, T0);
    const frames: (typeof scenario.records)[] = [];
    for (let i = 0; i < scenario.records.length; i += 10) frames.push(scenario.records.slice(i, i + 10));
    // The first half live, then the end, then the middle half late (a buffer flushed after a gap).
    const half = Math.floor(frames.length / 2);
    const order = [...frames.slice(0, half / 2), ...frames.slice(half), ...frames.slice(half / 2, half)];
    for (const f of order) {
      await sim.sendFrame(f);
      // Let the worker see partial histories now and then, as it would live.
      if (Math.random() < 0.2) await new Promise((res) => setTimeout(res, 100));
    }
    await waitFor('every record stored', async () => {
      const rows = await db.knex('positions').count<{ count: string }[]>('* as count');
      return Number(rows[0]?.count) === scenario.records.length;
    });
    await settle(db.knex);

    directus = stack.started(await startDirectus({ database: db, redisPrefix: false }), (d) => d.stop());
    const trips = (await api<{ data: Item[] }>('/items/trips?sort=start_time&limit=-1')).body.data;
    const stops = (await api<{ data: Item[] }>('/items/stops?sort=start_time&limit=-1')).body.data;
    const events = (await api<{ data: Item[] }>('/items/events?sort=time,type&limit=-1')).body.data;
    const days = (await api<{ data: Item[] }>('/items/daily_summaries?limit=-1')).body.data;
    const dev = (await api<{ data: Item }>(`/items/devices/${deviceId}`)).body.data;

    const at = (s: number) => T0 + s * 1000;
    // Trip 1: 10 minutes (600 s) driving, 300 s at 60 + 30 s at 110 + 270 s at 60 = 10.417 km.
    expect(trips).toHaveLength(2);
    expect(ms(trips[0]!.start_time)).toBe(at(0));
    expect(ms(trips[0]!.end_time)).toBe(at(600)); // first stopped fix
    expect(Number(trips[0]!.distance_km)).toBeCloseTo(10.417, 1); // ±50 m
    expect(trips[0]!.duration_s).toBe(600);
    expect(trips[0]!.driving_s).toBe(600);
    expect(trips[0]!.max_speed).toBe(110);
    expect(trips[0]!.in_progress).toBe(false);
    expect(Number(trips[0]!.start_odometer_km)).toBeCloseTo(1000, 3);
    // Trip 2 departs from the last parked fix (60 s logging) and is still going: 295 s at 60 km/h.
    expect(ms(trips[1]!.start_time)).toBe(at(1740));
    expect(trips[1]!.in_progress).toBe(true);
    expect(Number(trips[1]!.distance_km)).toBeCloseTo(4.917, 1);
    // One stop: idle 5 min with the engine on, then parked 15 min.
    expect(stops).toHaveLength(1);
    expect(ms(stops[0]!.start_time)).toBe(at(600));
    expect(ms(stops[0]!.end_time)).toBe(at(1740));
    expect(stops[0]!.duration_s).toBe(1140);
    expect(stops[0]!.engine_on_s).toBe(300);

    expect(events.filter((e) => e.type !== 'test_marker').map((e) => [e.type, ms(e.time)])).toEqual([
      ['trip_start', at(0)],
      ['overspeed_start', at(300)],
      ['overspeed_end', at(330)],
      ['trip_end', at(600)],
      ['ignition_off', at(900)],
      ['trip_start', at(1740)],
      ['ignition_on', at(1800)],
    ]);
    const overEnd = events.find((e) => e.type === 'overspeed_end')!;
    expect(overEnd.attributes).toEqual({ limit: 90, max_speed: 110, duration_s: 30 });
    expect(events.find((e) => e.type === 'ignition_off')!.position).not.toBeNull();

    expect(days).toHaveLength(1);
    expect(days[0]).toMatchObject({ trips: 2, stops: 1, idle_s: 300, driving_s: 955, engine_s: 1195, max_speed: 110 });
    expect(Number(days[0]!.distance_km)).toBeCloseTo(15.333, 1);
    // Accumulators: the device sends its odometer (IO 16); engine hours are computed (no IO 449).
    const lastOdo = scenario.records.at(-1)!.io.values[4] as number;
    expect(Number(dev.odometer_km)).toBeCloseTo(lastOdo / 1000, 3);
    expect(Number(dev.engine_hours)).toBeCloseTo(1195 / 3600, 3);

    // The stored rows equal a from-scratch derivation of the stored positions.
    const positions = await new SqlHistoryReader(db.knex, deviceId).positionsFrom(null);
    const scratch = deriveWindow({ from: null, positions, settings: DEFAULT_SETTINGS, prior: NO_PRIOR });
    expect(trips.map((t) => ms(t.start_time))).toEqual(scratch.trips.map((t) => t.startTime));
    expect(events.filter((e) => e.type !== 'test_marker')).toHaveLength(scratch.events.length);

    // Seam: the deriver's markers are stored; the hook saw each event inserted exactly once.
    expect(events.filter((e) => e.type === 'test_marker')).toHaveLength(2);
    const keys = inserted.map((e) => `${e.type}|${e.time}|${e.key}`);
    expect(new Set(keys).size).toBe(keys.length);
    const before = events.map((e) => e.id).sort();

    // Re-deriving everything changes nothing, keeps every id, and notifies no one again.
    inserted.length = 0;
    for (const run of await deriveRange(config, { from: null, to: null }, extensions)) {
      for (const c of Object.values(run.changes!)) expect(c).toEqual({ inserted: 0, updated: 0, deleted: 0 });
    }
    expect(inserted).toEqual([]);
    const after = (await api<{ data: { id: number }[] }>('/items/events?limit=-1&fields=id')).body.data
      .map((e) => e.id)
      .sort();
    expect(after).toEqual(before);

    // Only the worker writes derived rows and accumulators; corrections are the admin's.
    const tripPatch = await api(`/items/trips/${trips[0]!.id}`, {
      method: 'PATCH',
      body: JSON.stringify({ distance_km: 1 }),
    });
    expect(tripPatch.status).toBe(403);
    const odoPatch = await api(`/items/devices/${deviceId}`, {
      method: 'PATCH',
      body: JSON.stringify({ odometer_km: 1 }),
    });
    expect(odoPatch.status).toBe(403);
    const badOverride = await api(`/items/devices/${deviceId}`, {
      method: 'PATCH',
      body: JSON.stringify({ history_settings: { timeZone: 'Mars/Olympus' } }),
    });
    expect(badOverride.status).toBe(400);
    const badFleet = await api('/items/fleet_settings', { method: 'PATCH', body: JSON.stringify({ max_gap_s: -5 }) });
    expect(badFleet.status).toBe(400);
    const correction = await api(`/items/devices/${deviceId}`, {
      method: 'PATCH',
      body: JSON.stringify({ odometer_correction_km: 100, engine_hours_correction: 2 }),
    });
    expect(correction.status).toBe(200);

    // The correction reaches the accumulators through the worker (the hook marks the device).
    const deviceRow = async () => (await api<{ data: Item }>(`/items/devices/${deviceId}`)).body.data;
    await waitFor(
      'the corrected odometer',
      async () => {
        const d = await deviceRow();
        return Math.abs(Number(d.odometer_km) - (lastOdo / 1000 + 100)) < 0.001;
      },
      60_000,
      500,
    );
    expect(Number((await deviceRow()).engine_hours)).toBeCloseTo(1195 / 3600 + 2, 3);

    // A detection-settings change made in Directus recomputes past history, no CLI: a fleet
    // overspeed limit above the drive's 110 km/h removes its overspeed events; a device override
    // of 100 km/h brings them back with that limit.
    const overspeed = async () =>
      (await api<{ data: Item[] }>(`/items/events?filter[type][_starts_with]=overspeed&sort=time&limit=-1`)).body.data;
    const fleet = await api('/items/fleet_settings', {
      method: 'PATCH',
      body: JSON.stringify({ overspeed_limit_kmh: 120 }),
    });
    expect(fleet.status).toBe(200);
    await waitFor('overspeed events gone at 120 km/h', async () => (await overspeed()).length === 0, 60_000, 500);
    expect((await api<{ data: Item[] }>('/items/trips?limit=-1')).body.data).toHaveLength(2);
    const override = await api(`/items/devices/${deviceId}`, {
      method: 'PATCH',
      body: JSON.stringify({ history_settings: { overspeedLimitKmh: 100 } }),
    });
    expect(override.status).toBe(200);
    await waitFor('overspeed events back at 100 km/h', async () => (await overspeed()).length === 2, 60_000, 500);
    const [start, end] = await overspeed();
    expect(ms(start!.time)).toBe(at(300));
    expect(end!.attributes).toEqual({ limit: 100, max_speed: 110, duration_s: 30 });
  }, 360_000);
});
