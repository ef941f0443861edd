/**
 * The worker's batched path against real PostgreSQL: several devices derived in one transaction,
 * with positions and marks written by the processor's own writer, alerting's geofence deriver and
 * alert outbox hook registered as `daemon derive` registers them. One device is held by another
 * session (as another worker or `derive --from` would hold it): the batch leaves it and its marks
 * alone, and a later batch derives it. Every device ends equal to a from-scratch derivation.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/index.js';
import { alertingExtensions } from '../../src/alerts/history-extensions.js';
import { loadConfig } from '../../src/config.js';
import { WindowCache } from '../../src/history/cache.js';
import { deriveWindow } from '../../src/history/derive.js';
import type { DeviceKey, HistoryExtensions } from '../../src/history/hooks.js';
import { runDerive } from '../../src/history/main.js';
import { DEFAULT_SETTINGS } from '../../src/history/settings.js';
import { SqlHistoryReader } from '../../src/history/store.js';
import { NO_PRIOR } from '../../src/history/types.js';
import { deriveBatch, HISTORY_LOCK, processorBehindMs } from '../../src/history/worker.js';
import { protocolIoViews } from '../../src/processor/decode.js';
import { entriesToRows, latestPerDevice, type PositionRow } from '../../src/processor/rows.js';
import { PositionWriter } from '../../src/processor/writer.js';
import { GROUND_TRUTH_PHASES, scenarioRecords } from '../../src/simulator/scenario.js';
import { addDevice, addFence, addRule, alertsEnv } from '../alerts/support.js';
import { silentLogger, waitFor } from '../processor/support.js';

const T0 = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() - 2, 10, 0, 0);

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db?.drop());

/** The ground-truth drive, started `offsetS` later and `north` degrees further north per device. */
function driveRows(imei: string, offsetS: number, north: number, receivedAt = Date.now()): PositionRow[] {
  const scenario = scenarioRecords(GROUND_TRUTH_PHASES, T0 + offsetS * 1000, { lat: 54.6872 + north, lon: 25.2797 });
  return entriesToRows(
    [{ id: '0-0', imei, receivedAt, records: scenario.records }],
    { now: Date.now(), futureMarginMs: 60_000 },
    protocolIoViews,
  );
}

/** One processor write of all rows (positions, the device update and the history marks). */
async function write(writer: PositionWriter, rows: PositionRow[], ids: Map<string, DeviceKey>) {
  await writer.write(rows, latestPerDevice(rows), new Map(rows.map((r) => [r.imei, r.receivedAt])), ids);
}

const ms = (v: unknown) => (v === null ? null : new Date(v as string).getTime());
const BUILT_IN = (t: string) => !t.startsWith('geofence_') && !t.startsWith('zone');

/** The device's stored rows against one pass over all of its stored positions. */
async function expectFromScratch(device: DeviceKey) {
  const positions = await new SqlHistoryReader(db.knex, device).positionsFrom(null);
  expect(positions.length).toBeGreaterThan(0);
  const scratch = deriveWindow({ from: null, positions, settings: DEFAULT_SETTINGS, prior: NO_PRIOR });
  const trips = await db.knex('trips').where({ device }).orderBy('start_time');
  const stops = await db.knex('stops').where({ device }).orderBy('start_time');
  const events = (await db.knex('events').where({ device }).orderBy(['time', 'type'])).filter(
    (e) => BUILT_IN(e.type) && !String(e.key).startsWith('zone:'),
  );
  const days = await db.knex('daily_summaries').where({ device }).orderBy('day');
  expect(trips.map((t) => [ms(t.start_time), ms(t.end_time), Number(t.distance_km), t.in_progress])).toEqual(
    scratch.trips.map((t) => [t.startTime, t.endTime, t.distanceDm / 10_000, t.inProgress]),
  );
  expect(stops.map((s) => [ms(s.start_time), ms(s.end_time), s.duration_s, s.engine_on_s])).toEqual(
    scratch.stops.map((s) => [s.startTime, s.endTime, s.durationS, s.engineOnS]),
  );
  expect(events.map((e) => [e.type, ms(e.time)])).toEqual(
    scratch.events.filter((e) => e.key === '').map((e) => [e.type, e.time]),
  );
  expect(days.map((d) => [Number(d.distance_km), d.trips, d.stops, d.engine_s])).toEqual(
    scratch.days.map((d) => [d.distanceDm / 10_000, d.trips, d.stops, d.engineS]),
  );
  const dev = await db.knex('devices').where({ id: device }).first();
  expect(Number(dev.engine_hours)).toBeCloseTo(scratch.totals.engineMs / 3_600_000, 3);
}

const count = async (table: string, device: DeviceKey) =>
  Number((await db.knex(table).where({ device }).count<{ n: string }[]>('* as n'))[0]!.n);

describe('batched derivation', () => {
  it('derives several devices in one transaction, leaves a device another session holds, derives it later', async () => {
    const imeis = ['356307042441101', '356307042441102', '356307042441103'];
    const [a, b, c] = await Promise.all(imeis.map((imei, i) => addDevice(db.knex, imei, `Batch ${i + 1}`)));
    const ids = new Map<string, DeviceKey>(imeis.map((imei, i) => [imei, [a!, b!, c!][i]!]));
    const rows = imeis.map((imei, i) => driveRows(imei, i * 7, i * 0.05));
    const pool = new pg.Pool({ ...db.connection, max: 1 });
    const writer = new PositionWriter(pool);

    // A fence on device a's first drive (its 40th record, 200 s in) and a rule for entering it.
    const mid = rows[0]![40]!;
    const fence = await addFence(db.knex, 'depot', [
      mid.longitude - 0.003,
      mid.latitude - 0.003,
      mid.longitude + 0.003,
      mid.latitude + 0.003,
    ]);
    const rule = await addRule(db.knex, {
      name: 'enter depot',
      type: 'geofence_enter',
      geofence: fence,
      webhook_url: 'http://127.0.0.1:9/hook',
      notify_stale: true,
    });
    const alerting = alertingExtensions(loadConfig(alertsEnv(db.connection)));
    const loads: DeviceKey[][] = [];
    const hookCalls: DeviceKey[][] = [];
    const extensions: HistoryExtensions = {
      eventDerivers: [
        ...(alerting.eventDerivers ?? []),
        {
          name: 'probe',
          load: async (_trx, inputs) => {
            loads.push(inputs.map((i) => i.device));
            return inputs.map(() => null);
          },
          derive: () => [],
        },
      ],
      afterEvents: [
        ...(alerting.afterEvents ?? []),
        async (_trx, changes) => void hookCalls.push(changes.map((ch) => ch.device)),
      ],
    };

    // The first half of every drive in one processor write: one mark per device.
    const half = (r: PositionRow[]) => Math.floor(r.length / 2);
    await write(
      writer,
      rows.flatMap((r) => r.slice(0, half(r))),
      ids,
    );
    expect(await count('history_dirty', b!)).toBe(1);

    // Another session holds device b, as a second worker or `derive --from` would.
    const holder = await db.knex.transaction();
    try {
      await holder.raw('SELECT pg_advisory_xact_lock(?, ?)', [HISTORY_LOCK, b]);
      const first = await deriveBatch(db.knex, [a!, b!, c!], 'marks', extensions);
      expect(first.map((o) => [o.device, o.derived])).toEqual([
        [a, true],
        [b, false],
        [c, true],
      ]);
      // One transaction, one load and one hook call for both derived devices (in id order).
      const both = [a!, c!].sort((x, y) => x - y);
      expect(loads).toEqual([both]);
      expect(hookCalls).toEqual([both]);
      expect(first[0]!.changes!.trips.inserted).toBe(1);
      expect(await count('history_dirty', a!)).toBe(0);
      expect(await count('history_dirty', c!)).toBe(0);
      // b: untouched, its mark kept for later.
      expect(await count('history_dirty', b!)).toBe(1);
      expect(await count('trips', b!)).toBe(0);
      await expectFromScratch(a!);
      await expectFromScratch(c!);
      // The geofence deriver ran in the batch: a entered the fence, the rule fired once into the outbox.
      const entered = await db.knex('events').where({ device: a, type: 'geofence_enter', key: String(fence) });
      expect(entered).toHaveLength(1);
      expect(await db.knex('events').where({ device: c, type: 'geofence_enter' })).toHaveLength(0);
      const alerts = await db.knex('alerts').where({ rule });
      expect(alerts.map((x) => [Number(x.device), ms(x.event_time)])).toEqual([[a, ms(entered[0]!.time)]]);
      const deliveries = await db.knex('alert_deliveries').where({ alert: alerts[0]!.id });
      expect(deliveries.map((d) => [d.channel, d.target, d.status])).toEqual([
        ['webhook', 'http://127.0.0.1:9/hook', 'pending'],
      ]);

      // The rest of the drives arrives while b is still held.
      await write(
        writer,
        rows.flatMap((r) => r.slice(half(r))),
        ids,
      );
    } finally {
      await holder.rollback();
      await pool.end();
    }

    // Released: the next batch derives b (both its marks) and a, c from their new marks.
    const second = await deriveBatch(db.knex, [a!, b!, c!], 'marks', extensions);
    expect(second.map((o) => o.derived)).toEqual([true, true, true]);
    expect(Number((await db.knex('history_dirty').count<{ n: string }[]>('* as n'))[0]!.n)).toBe(0);
    for (const device of [a!, b!, c!]) await expectFromScratch(device);
    expect(await count('trips', b!)).toBe(2);

    // Nothing left: a batch derives nothing; a from-scratch batch changes nothing and alerts no one again.
    expect((await deriveBatch(db.knex, [a!, b!, c!], 'marks', extensions)).map((o) => o.derived)).toEqual([
      false,
      false,
      false,
    ]);
    const again = await deriveBatch(db.knex, [a!, b!, c!], null, extensions);
    for (const o of again) {
      for (const ch of Object.values(o.changes!)) expect(ch).toEqual({ inserted: 0, updated: 0, deleted: 0 });
    }
    expect(await db.knex('alerts').where({ rule })).toHaveLength(1);
  }, 120_000);

  it('a worker uses its window copy only while its own derivation is the last: another deriver in between forces a whole read', async () => {
    const imei = '356307042441104';
    const device = await addDevice(db.knex, imei, 'Cached');
    const ids = new Map<string, DeviceKey>([[imei, device]]);
    const rows = driveRows(imei, 0, 0.2);
    const part = (i: number) => rows.slice(Math.floor((rows.length * i) / 4), Math.floor((rows.length * (i + 1)) / 4));
    const pool = new pg.Pool({ ...db.connection, max: 1 });
    const writer = new PositionWriter(pool);
    const cache = new WindowCache(100_000);
    try {
      // The worker derives the first quarter and keeps its window.
      await write(writer, part(0), ids);
      expect((await deriveBatch(db.knex, [device], 'marks', {}, undefined, cache))[0]!.derived).toBe(true);
      expect(cache.positions).toBe(part(0).length);
      // Another worker (no copy of its own) takes the second quarter's marks.
      await write(writer, part(1), ids);
      expect((await deriveBatch(db.knex, [device], 'marks', {}))[0]!.derived).toBe(true);
      // The third quarter's marks start after the second: the copy lacks the second quarter, and is not used.
      await write(writer, part(2), ids);
      expect((await deriveBatch(db.knex, [device], 'marks', {}, undefined, cache))[0]!.derived).toBe(true);
      await expectFromScratch(device);
      const afterWhole = cache.positions;
      expect(afterWhole).toBeGreaterThanOrEqual(part(0).length + part(1).length);
      // Its own derivation was the last: the fourth quarter is read alone and added to the copy.
      await write(writer, part(3), ids);
      expect((await deriveBatch(db.knex, [device], 'marks', {}, undefined, cache))[0]!.derived).toBe(true);
      await expectFromScratch(device);
      expect(await count('trips', device)).toBe(2);
    } finally {
      await pool.end();
    }
  }, 60_000);

  it('marks of a device deleted before the worker took them are dropped, nothing derived, the batch goes on', async () => {
    const imeis = ['356307042441108', '356307042441109'];
    const [gone, kept] = await Promise.all(imeis.map((imei, i) => addDevice(db.knex, imei, `Deleted ${i + 1}`)));
    const ids = new Map<string, DeviceKey>(imeis.map((imei, i) => [imei, [gone!, kept!][i]!]));
    const pool = new pg.Pool({ ...db.connection, max: 1 });
    try {
      await write(
        new PositionWriter(pool),
        imeis.flatMap((imei, i) => driveRows(imei, i * 5, 0.3 + i * 0.05)),
        ids,
      );
    } finally {
      await pool.end();
    }
    expect(await count('history_dirty', gone!)).toBe(1);
    // The device goes (its positions with it) while its mark waits: marks have no foreign key.
    await db.knex('devices').where({ id: gone }).delete();
    expect(await count('history_dirty', gone!)).toBe(1);

    const outcomes = await deriveBatch(db.knex, [gone!, kept!], 'marks', {});
    expect(outcomes.map((o) => [o.device, o.derived])).toEqual([
      [gone, false],
      [kept, true],
    ]);
    expect(await count('history_dirty', gone!)).toBe(0);
    expect(await count('trips', gone!)).toBe(0);
    expect(await db.knex('history_state').where({ device: gone })).toHaveLength(0);
    await expectFromScratch(kept!);
  }, 60_000);

  it('the worker yields while the processor works off a backlog, and derives anyway once it has yielded its longest', async () => {
    await db.knex('alert_rules').update({ enabled: false });
    const imeis = ['356307042441110', '356307042441111'];
    const [a, b] = await Promise.all(imeis.map((imei, i) => addDevice(db.knex, imei, `Backlog ${i + 1}`)));
    const ids = new Map<string, DeviceKey>(imeis.map((imei, i) => [imei, [a!, b!][i]!]));
    const pool = new pg.Pool({ ...db.connection, max: 1 });
    const writer = new PositionWriter(pool);
    const config = loadConfig(
      alertsEnv(db.connection, {
        HISTORY_METRICS_PORT: '0',
        HISTORY_YIELD_BEHIND_MS: '2000',
        HISTORY_YIELD_MAX_MS: '500',
      }),
    );
    const yields = async (port: number) => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(/^fleet_history_yields_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
    };
    // Rows received a moment ago: the processor keeps up.
    const behindB = driveRows(imeis[1]!, 9, 0.5, Date.now() - 30_000);
    await write(writer, driveRows(imeis[0]!, 0, 0.45), ids);
    expect(await processorBehindMs(db.knex)).toBeLessThan(2000);
    const derived: DeviceKey[] = [];
    let backlog = true;
    try {
      // Rows received 30 s before the processor commits them, batch after batch: a backlog.
      await write(writer, behindB.slice(0, 1), ids);
      expect(await processorBehindMs(db.knex)).toBeGreaterThanOrEqual(29_000);
      const keepBehind = (async () => {
        for (let i = 1; backlog && i < behindB.length; i++) {
          await write(writer, behindB.slice(i, i + 1), ids);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const worker = await runDerive(config, silentLogger, { onDerived: (o) => void derived.push(o.device) });
      try {
        // Yields, then derives after its longest yield although the backlog goes on.
        await waitFor('a derived during the backlog', () => derived.includes(a!));
        expect(backlog).toBe(true);
        expect(await yields(worker.metricsPort)).toBeGreaterThan(0);
      } finally {
        backlog = false;
        await keepBehind;
        await waitFor(
          'every mark handled',
          async () => Number((await db.knex('history_dirty').count<{ n: string }[]>('* as n'))[0]!.n) === 0,
        );
        await worker.stop();
      }
      await expectFromScratch(a!);
      await expectFromScratch(b!);
    } finally {
      backlog = false;
      await pool.end();
    }
  }, 60_000);

  it('the worker derives a device a rule watches while a batch of the others is still under way', async () => {
    // Only this test's rule counts (a rule of another test watching every device would put none first).
    await db.knex('alert_rules').update({ enabled: false });
    const imeis = ['356307042441105', '356307042441106', '356307042441107'];
    const [a, b, watched] = await Promise.all(imeis.map((imei, i) => addDevice(db.knex, imei, `Urgent ${i + 1}`)));
    const ids = new Map<string, DeviceKey>(imeis.map((imei, i) => [imei, [a!, b!, watched!][i]!]));
    await addRule(db.knex, { name: 'watched ignition', type: 'ignition_on', devices: [imeis[2]] });
    const pool = new pg.Pool({ ...db.connection, max: 1 });
    const writer = new PositionWriter(pool);
    const config = loadConfig(alertsEnv(db.connection, { HISTORY_METRICS_PORT: '0' }));
    const alerting = alertingExtensions(config);
    // A deriver that holds the batch with device a in it until released.
    let held = false;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const extensions: HistoryExtensions = {
      ...alerting,
      eventDerivers: [
        ...(alerting.eventDerivers ?? []),
        {
          name: 'gate',
          load: async (_trx, inputs) => {
            if (inputs.some((i) => i.device === a)) {
              held = true;
              await gate;
            }
            return inputs.map(() => null);
          },
          derive: () => [],
        },
      ],
    };
    const derived: DeviceKey[] = [];
    try {
      await write(writer, [...driveRows(imeis[0]!, 0, 0.3), ...driveRows(imeis[1]!, 7, 0.35)], ids);
      const worker = await runDerive(config, silentLogger, {
        extensions,
        onDerived: (o) => void derived.push(o.device),
      });
      try {
        await waitFor('the batch of a and b held', () => held);
        // Marked while that batch is under way: derived without waiting for it.
        await write(writer, driveRows(imeis[2]!, 14, 0.4), ids);
        await waitFor('the watched device derived', () => derived.includes(watched!));
        expect(derived).toEqual([watched]);
        release();
        await waitFor('a and b derived', () => derived.includes(a!) && derived.includes(b!));
      } finally {
        release();
        await worker.stop();
      }
      for (const device of [a!, b!, watched!]) await expectFromScratch(device);
    } finally {
      await pool.end();
    }
  }, 60_000);
});
