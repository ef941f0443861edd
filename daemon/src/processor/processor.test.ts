/**
 * The processor against real Redis and a real PostgreSQL/PostGIS database with the Directus schema,
 * and `daemon replay-dead` on the dead letters it wrote.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, createTestRedis, type TestDatabase, type TestRedis } from '../../../test/support/index.js';
import { freePort } from '../../scripts/lib/own-services.js';
import {
  newImei,
  processorConfig,
  processorEnv,
  record,
  silentLogger,
  telemetryFields,
  track,
  waitFor,
} from '../../test/processor/support.js';
import { decodeDeadLetter, encodeConnectionEvent, encodeRegistryValue, GROUPS, redisKeys } from '../contract/index.js';
import { ioJsonText, namedAttributesText } from '../protocol/index.js';
import { TelemetryConsumer } from './consumer.js';
import { type RunningProcessor, runProcess } from './main.js';
import { createProcessorMetrics } from './metrics.js';
import { parseReplayArgs, replayDead } from './replay-dead.js';
import type { IoViews } from './rows.js';
import { removeIdleConsumers, trimAcknowledged } from './stream.js';

let db: TestDatabase;
let r: TestRedis;
const running: RunningProcessor[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  [db, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop('test end')));
  for (const c of children.splice(0)) c.kill('SIGKILL');
});
afterAll(async () => {
  await r?.cleanup();
  await db?.drop();
});

/** Each test gets its own key prefix so streams and groups start empty. */
function freshKeys() {
  const prefix = `${r.prefix}${Math.random().toString(36).slice(2, 8)}:`;
  return { prefix, keys: { ...keysFor(prefix) } };
}
function keysFor(prefix: string) {
  return {
    avl: `${prefix}telemetry:avl`,
    dead: `${prefix}telemetry:dead`,
    events: `${prefix}connections:events`,
    registry: `${prefix}connections:registry`,
    heartbeat: (i: string) => `${prefix}instance:heartbeat:${i}`,
  };
}

async function addDevice(imei = newImei()): Promise<{ imei: string; id: number }> {
  const [row] = await db
    .knex('devices')
    .insert({ imei, name: `T ${imei}`, enabled: true })
    .returning('id');
  return { imei, id: Number(row.id) };
}

async function start(prefix: string, extra: Record<string, string> = {}, overrides = {}) {
  const p = await runProcess(processorConfig(db.connection, r.url, prefix, extra), silentLogger, overrides);
  running.push(p);
  return p;
}

async function metric(p: RunningProcessor, name: string, labels: Record<string, string> = {}): Promise<number> {
  const json = await p.registry.getMetricsAsJSON();
  const m = json.find((x) => x.name === name);
  if (!m) return 0;
  return (m.values as { value: number; labels: Record<string, string | number> }[])
    .filter((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))
    .reduce((s, v) => s + v.value, 0);
}

/** Waits until every entry of the stream was acknowledged by the processors group. */
async function drained(stream: string): Promise<void> {
  await waitFor(`${stream} drained`, async () => {
    const groups = (await r.redis.xinfo('GROUPS', stream)) as unknown[][];
    const g = groups.map((x) => Object.fromEntries(chunk(x))).find((x) => x.name === GROUPS.processors);
    return g !== undefined && Number(g.pending) === 0 && Number(g.lag) === 0;
  });
}
/** Orders stream ids (`ms-seq`) as Redis does. */
function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}
function chunk(flat: unknown[]): [string, unknown][] {
  const out: [string, unknown][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), flat[i + 1]]);
  return out;
}

async function rowsOf(deviceId: number) {
  const res = await db.knex.raw(
    `SELECT (extract(epoch FROM fix_time) * 1000)::bigint AS t, ST_X(location) AS lon, ST_Y(location) AS lat,
            altitude, heading, speed, satellites, priority, event_io_id, io, attributes, flags,
            (extract(epoch FROM received_at) * 1000)::bigint AS recv
       FROM positions WHERE device = ? ORDER BY fix_time, event_io_id`,
    [deviceId],
  );
  return res.rows as {
    t: string;
    lon: number;
    lat: number;
    altitude: number;
    heading: number;
    speed: number;
    satellites: number;
    priority: number;
    event_io_id: number;
    io: Record<string, unknown>;
    attributes: Record<string, unknown>;
    flags: string[] | null;
    recv: string;
  }[];
}

async function deviceState(id: number) {
  const res = await db.knex.raw(
    `SELECT (extract(epoch FROM last_fix_at) * 1000)::bigint AS fix, (extract(epoch FROM last_seen_at) * 1000)::bigint AS seen,
            ST_X(last_location) AS lon, ST_Y(last_location) AS lat, last_speed, last_heading, last_attributes, online, instance_id
       FROM devices WHERE id = ?`,
    [id],
  );
  return res.rows[0] as {
    fix: string | null;
    seen: string | null;
    lon: number | null;
    lat: number | null;
    last_speed: number | null;
    last_heading: number | null;
    last_attributes: Record<string, unknown> | null;
    online: boolean;
    instance_id: string | null;
  };
}

describe('processor', () => {
  it('writes one row per record with raw IO, named attributes and latest state; duplicates add nothing', async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    const records = track(10);
    const fields = telemetryFields(dev.imei, records, { receivedAt: Date.now() - 500 });
    // The same frame twice (a device resending after a lost ack), and a resend of its first half.
    await r.redis.xadd(keys.avl, '*', ...fields);
    await r.redis.xadd(keys.avl, '*', ...fields);
    await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, records.slice(0, 5)));
    const p = await start(prefix);
    await drained(keys.avl);

    const rows = await rowsOf(dev.id);
    expect(rows).toHaveLength(10);
    expect(rows.map((x) => Number(x.t))).toEqual(records.map((x) => x.timestamp));
    const first = rows[0]!;
    expect(first.lon).toBeCloseTo(records[0]!.longitude, 7);
    expect(first.lat).toBeCloseTo(records[0]!.latitude, 7);
    expect(first).toMatchObject({
      altitude: 112,
      heading: 180,
      satellites: 11,
      priority: 0,
      event_io_id: 0,
      flags: null,
    });
    expect(first.io).toEqual({ '239': 1, '240': 1, '21': 4, '66': 24079, '16': 123456 });
    expect(first.attributes).toMatchObject({ ignition: true, movement: true, externalVoltage: 24.079 });

    const s = await deviceState(dev.id);
    const last = records[9]!;
    expect(Number(s.fix)).toBe(last.timestamp);
    expect(s.lat).toBeCloseTo(last.latitude, 7);
    expect(s.last_speed).toBe(last.speed);
    expect(s.last_heading).toBe(last.angle);
    expect(s.last_attributes).toMatchObject({ ignition: true });
    expect(await metric(p, 'fleet_processor_rows_written_total')).toBe(10);
    expect(await metric(p, 'fleet_processor_conflicts_skipped_total')).toBe(15);

    // The same figures over HTTP, with the lag gauge, and a healthy /healthz.
    const text = await waitFor('lag gauge at 0', async () => {
      const body = await (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text();
      return /^fleet_processor_consumer_lag\{[^}]*\} 0$/m.test(body) ? body : undefined;
    });
    expect(text).toMatch(/^fleet_processor_rows_written_total\{[^}]*\} 10$/m);
    const health = await fetch(`http://127.0.0.1:${p.metricsPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, checks: { redis: { ok: true }, postgres: { ok: true } } });
  });

  it('never rewinds latest state for late or out-of-order records; last_seen_at follows receive time', async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    const base = Date.now() - 7_200_000;
    const newer = track(5, base + 600_000, 55.0);
    const older = track(5, base, 54.0);
    const now = Date.now();
    // Within one batch: newer first, then older with a later receive time.
    await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, newer, { receivedAt: now - 2000 }));
    await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, older, { receivedAt: now - 1000 }));
    await start(prefix);
    await drained(keys.avl);
    let s = await deviceState(dev.id);
    expect(Number(s.fix)).toBe(newer[4]!.timestamp);
    expect(s.lat).toBeCloseTo(newer[4]!.latitude, 7);
    expect(Number(s.seen)).toBe(now - 1000);

    // In a later batch: records older than the stored latest fix.
    const late = track(3, base + 60_000, 53.0);
    await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, late, { receivedAt: now }));
    await drained(keys.avl);
    s = await deviceState(dev.id);
    expect(Number(s.fix)).toBe(newer[4]!.timestamp);
    expect(s.lat).toBeCloseTo(newer[4]!.latitude, 7);
    expect(Number(s.seen)).toBe(now);
    expect(await rowsOf(dev.id)).toHaveLength(13);
  });

  it('stores bad records with their flags and keeps them out of latest state', async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    const t = Date.now() - 600_000;
    const records = [
      record({ timestamp: t, latitude: 54.6872, longitude: 25.2797 }),
      record({ timestamp: t + 1000, satellites: 0 }),
      record({ timestamp: t + 2000, latitude: 0, longitude: 0 }),
      record({ timestamp: Date.now() + 48 * 3_600_000 }),
      record({ timestamp: Date.UTC(1999, 5, 1) }),
      record({ timestamp: t + 3000, latitude: 40.4168, longitude: -3.7038 }), // Madrid, 3 s later: a jump
    ];
    const p = await start(prefix);
    await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, records));
    await drained(keys.avl);
    const rows = await rowsOf(dev.id);
    expect(rows).toHaveLength(6);
    const flagsAt = (ts: number) => rows.find((x) => Number(x.t) === ts)?.flags;
    expect(flagsAt(t)).toBeNull();
    expect(flagsAt(t + 1000)).toEqual(['no_fix']);
    expect(flagsAt(t + 2000)).toEqual(['no_fix']);
    expect(flagsAt(records[3]!.timestamp)).toEqual(['future']);
    expect(flagsAt(records[4]!.timestamp)).toEqual(['before_2000']);
    expect(flagsAt(t + 3000)).toEqual(['jump']);
    const s = await deviceState(dev.id);
    expect(Number(s.fix)).toBe(t);
    expect(s.lat).toBeCloseTo(54.6872, 7);
    expect(await metric(p, 'fleet_processor_flagged_records_total', { reason: 'no_fix' })).toBe(2);
    expect(await metric(p, 'fleet_processor_flagged_records_total', { reason: 'jump' })).toBe(1);
  });

  it("stores every one of a device's distinct far-future records, flagged, with the raw value", async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    // A device whose clock went wild: values a timestamptz cannot hold, all distinct.
    const raw = Array.from({ length: 12 }, (_, i) => (i < 6 ? 253_402_300_800_000 + i * 1000 : 2 ** 60 + i * 4096));
    await start(prefix);
    await r.redis.xadd(
      keys.avl,
      '*',
      ...telemetryFields(
        dev.imei,
        raw.map((timestamp) => record({ timestamp })),
      ),
    );
    await drained(keys.avl);
    const rows = await rowsOf(dev.id);
    expect(rows).toHaveLength(raw.length);
    expect(new Set(rows.map((x) => x.t)).size).toBe(raw.length);
    for (const x of rows) expect(x.flags).toEqual(['future']);
    expect(rows.map((x) => x.attributes.rawTimestamp).sort()).toEqual(raw.map(String).sort());
  });

  it('moves poison entries to telemetry:dead with error, raw bytes and delivery count, and keeps going', async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    const garbage = Buffer.from('000000000000000a08010000deadbeef', 'hex');
    const badCrc = telemetryFields(dev.imei, track(2));
    const frameAt = badCrc.indexOf('frame') + 1;
    const corrupted = Buffer.from(badCrc[frameAt] as Buffer);
    corrupted[corrupted.length - 1]! ^= 0xff;
    badCrc[frameAt] = corrupted;
    const id1 = await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, []).slice(0, 12), 'frame', garbage);
    const id2 = await r.redis.xadd(keys.avl, '*', 'unexpected', 'fields');
    const id3 = await r.redis.xadd(keys.avl, '*', ...badCrc);
    const unknownImei = newImei();
    const id4 = await r.redis.xadd(keys.avl, '*', ...telemetryFields(unknownImei, track(1)));
    const badCodec = telemetryFields(dev.imei, track(1));
    badCodec[badCodec.indexOf('codec') + 1] = 'x';
    const id5 = await r.redis.xadd(keys.avl, '*', ...badCodec);
    const good = track(3);
    await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, good));
    const p = await start(prefix);
    await drained(keys.avl);

    expect(await rowsOf(dev.id)).toHaveLength(3);
    const dead = (await r.redis.xrangeBuffer(keys.dead, '-', '+')).map(([, f]) => decodeDeadLetter(f));
    expect(dead.map((d) => d.sourceId)).toEqual([id1, id2, id3, id5, id4]);
    expect(dead.map((d) => d.cause)).toEqual(['undecodable', 'invalid', 'undecodable', 'invalid', 'unknown_device']);
    // The entry's own fields are kept where valid (for replay-dead), never an invalid one.
    expect(dead[0]).toMatchObject({ codec: 0x8e, records: 0, instance: 'test-ingest' });
    expect(dead[3]).toMatchObject({ imei: dev.imei, codec: undefined, instance: 'test-ingest' });
    expect(dead[0]).toMatchObject({ imei: dev.imei, transport: 'tcp', deliveries: 1 });
    expect(dead[0]!.error).toMatch(/undecodable frame/);
    expect(dead[0]!.frame.equals(garbage)).toBe(true);
    expect(dead[1]!.error).toMatch(/invalid entry/);
    expect(dead[2]!.error).toMatch(/CRC/);
    expect(dead[2]!.frame.equals(corrupted)).toBe(true);
    expect(dead[4]).toMatchObject({ imei: unknownImei });
    expect(dead[4]!.error).toMatch(/unknown device/);
    expect(dead[4]!.frame.length).toBeGreaterThan(0);
    expect(await metric(p, 'fleet_processor_dead_letters_total')).toBe(5);
  });

  for (const method of ['direct', 'copy'] as const) {
    it(`devices deleted meanwhile (PROCESS_WRITE_METHOD=${method}): rows of a re-created one go to it, of a gone one to telemetry:dead, the rest are stored`, async () => {
      const { prefix, keys } = freshKeys();
      const [kept, recreated, gone] = await Promise.all([addDevice(), addDevice(), addDevice()]);
      const first = track(4);
      for (const d of [kept, recreated, gone]) await r.redis.xadd(keys.avl, '*', ...telemetryFields(d.imei, first));
      const p = await start(prefix, { PROCESS_WRITE_METHOD: method });
      await drained(keys.avl);
      // Deleted while the processor holds their ids; one comes back under a new id.
      await db.knex('devices').whereIn('id', [recreated.id, gone.id]).delete();
      const again = await addDevice(recreated.imei);
      const later = track(8).slice(4);
      // A resend of the stored rows with the new ones: the direct COPY falls back for this batch.
      for (const d of [kept, recreated, gone])
        await r.redis.xadd(keys.avl, '*', ...telemetryFields(d.imei, [...first, ...later]));
      await drained(keys.avl);
      expect(await rowsOf(kept.id)).toHaveLength(8);
      expect(await rowsOf(again.id)).toHaveLength(8);
      expect(await rowsOf(gone.id)).toHaveLength(0);
      const dead = (await r.redis.xrangeBuffer(keys.dead, '-', '+')).map(([, f]) => decodeDeadLetter(f));
      expect(dead.map((d) => [d.imei, d.cause])).toEqual([[gone.imei, 'unknown_device']]);
      expect(Number((await deviceState(again.id)).fix)).toBe(later.at(-1)!.timestamp);
      expect(await metric(p, 'fleet_processor_rows_written_total')).toBe(3 * 4 + 4 + 8);
      // The resent rows sent the direct COPY's batches (one or more, as the entries were read) the staging table's way.
      const fallbacks = await metric(p, 'fleet_processor_write_fallbacks_total');
      expect(method === 'direct' ? fallbacks > 0 : fallbacks === 0).toBe(true);
    });
  }

  it('stores an entry however often it was delivered: deliveries are not failures', async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    const id = (await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, track(2))))!;
    await r.redis.xgroup('CREATE', keys.avl, GROUPS.processors, '0');
    // A consumer that keeps getting the entry and dying on it (or restarts while the database is away).
    await r.redis.xreadgroup('GROUP', GROUPS.processors, 'ghost', 'COUNT', 10, 'STREAMS', keys.avl, '>');
    for (let i = 0; i < 9; i++) await r.redis.xclaim(keys.avl, GROUPS.processors, 'ghost', 0, id);
    await new Promise((res) => setTimeout(res, 150));
    await start(prefix, { PROCESS_CLAIM_IDLE_MS: '100', PROCESS_MAX_FAILURES: '3' });
    await drained(keys.avl);
    expect(await r.redis.xlen(keys.dead)).toBe(0);
    expect(await rowsOf(dev.id)).toHaveLength(2);
  });

  it('dead-letters nothing when restarted again and again while PostgreSQL is unreachable; stores all once it is back', async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    const records = track(30);
    for (let i = 0; i < 30; i += 5)
      await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, records.slice(i, i + 5)));
    const unreachable = { ...db.connection, port: await freePort() };
    for (let i = 0; i < 7; i++) {
      // Same name (re-reads its own pending entries) and new names (claims them): both count deliveries.
      const env = { INSTANCE_ID: i % 2 === 0 ? 'restarted' : `restarted-${i}`, PROCESS_CLAIM_IDLE_MS: '100' };
      const p = await runProcess(processorConfig(unreachable, r.url, prefix, env), silentLogger);
      await waitFor('a failed database attempt with the batch in hand', async () => {
        return (await metric(p, 'fleet_processor_retries_total', { dependency: 'postgres' })) > 0;
      });
      await p.stop('restart');
      await new Promise((res) => setTimeout(res, 150));
    }
    const pending = (await r.redis.xpending(keys.avl, GROUPS.processors, '-', '+', 100)) as [
      string,
      string,
      number,
      number,
    ][];
    expect(pending).toHaveLength(6);
    // Far beyond any delivery limit: the old rule would have dead-lettered all of them here.
    expect(Math.min(...pending.map((e) => Number(e[3])))).toBeGreaterThanOrEqual(5);

    const p = await start(prefix, { PROCESS_CLAIM_IDLE_MS: '100', PROCESS_MAX_FAILURES: '1' });
    await drained(keys.avl);
    expect(await r.redis.xlen(keys.dead)).toBe(0);
    expect((await rowsOf(dev.id)).map((x) => Number(x.t))).toEqual(records.map((x) => x.timestamp));
    expect(await metric(p, 'fleet_processor_dead_letters_total')).toBe(0);
  });

  it("counts an entry's own unexpected failures, isolates it from its batch and dead-letters it after PROCESS_MAX_FAILURES", async () => {
    const { prefix } = freshKeys();
    const keys = redisKeys(prefix);
    const dev = await addDevice();
    const POISON_IO = 9999;
    // A record this build mishandles (its IO view throws), between two good entries of one batch.
    const views: IoViews = {
      ioJsonText,
      attributesText: (io) => {
        if (io.ids.includes(POISON_IO)) throw new Error('this build cannot name IO 9999');
        return namedAttributesText(io);
      },
    };
    const good = track(4);
    const poison = record({ timestamp: good[3]!.timestamp + 5000, io: { ids: [239, POISON_IO], values: [1, 1] } });
    await r.redis.xadd(keys.telemetryAvl, '*', ...telemetryFields(dev.imei, good.slice(0, 2)));
    const poisonId = await r.redis.xadd(keys.telemetryAvl, '*', ...telemetryFields(dev.imei, [poison]));
    await r.redis.xadd(keys.telemetryAvl, '*', ...telemetryFields(dev.imei, good.slice(2)));
    const registry = new Registry();
    const reader = new Redis(r.url);
    const redis = new Redis(r.url);
    const pool = new pg.Pool({ ...db.connection, max: 2 });
    const consumer = new TelemetryConsumer(
      {
        keys,
        consumer: 'c1',
        batchSize: 10,
        blockMs: 50,
        claimIdleMs: 50,
        claimIntervalMs: 50,
        maxInFlight: 1,
        maxFailures: 3,
        deadMaxLen: 100,
        futureMarginMs: 86_400_000,
        maxSpeedKmh: 500,
      },
      { reader, redis, pool, logger: silentLogger, metrics: createProcessorMetrics(registry), views },
    );
    consumer.start();
    try {
      await drained(keys.telemetryAvl);
      expect((await rowsOf(dev.id)).map((x) => Number(x.t))).toEqual(good.map((x) => x.timestamp));
      const dead = (await r.redis.xrangeBuffer(keys.telemetryDead, '-', '+')).map(([, f]) => decodeDeadLetter(f));
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ sourceId: poisonId, imei: dev.imei, cause: 'failures' });
      expect(dead[0]!.error).toMatch(/failed 3 times: this build cannot name IO 9999/);
      expect(await r.redis.exists(keys.telemetryFailures)).toBe(0);
    } finally {
      await consumer.stop();
      reader.disconnect();
      redis.disconnect();
      await pool.end();
    }
  });

  it('caps telemetry:dead at PROCESS_DEAD_MAXLEN, keeping the newest, and shows its length as a gauge', async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    const garbage = Buffer.from('000000000000000a08010000deadbeef', 'hex');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, []).slice(0, 12), 'frame', garbage))!);
    }
    const p = await start(prefix, { PROCESS_DEAD_MAXLEN: '3' }, { lagIntervalMs: 100 });
    await drained(keys.avl);
    const dead = (await r.redis.xrangeBuffer(keys.dead, '-', '+')).map(([, f]) => decodeDeadLetter(f));
    expect(dead.map((d) => d.sourceId)).toEqual(ids.slice(2));
    expect(await metric(p, 'fleet_processor_dead_letters_total')).toBe(5);
    await waitFor('the dead-letter gauge', async () => (await metric(p, 'fleet_processor_dead_letter_entries')) === 3);
  });

  it('exactly once when a processor is killed -9 between commit and XACK and another consumer claims', async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    const records = track(40);
    const ids: string[] = [];
    for (let i = 0; i < 40; i += 10) {
      ids.push((await r.redis.xadd(keys.avl, '*', ...telemetryFields(dev.imei, records.slice(i, i + 10))))!);
    }
    const env = {
      ...process.env,
      ...processorEnv(db.connection, r.url, prefix, { PROCESS_BATCH_SIZE: '2', LOG_LEVEL: 'warn' }),
      FLEET_TEST_PAUSE_AFTER_COMMIT: '1',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'daemon/src/cli.ts', 'process'], {
      cwd: new URL('../../../', import.meta.url).pathname,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr!.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const committed = await waitFor('the child to commit its first batch', async () => {
      const m = /FLEET_TEST_COMMITTED (\S+)/.exec(out);
      return m?.[1]?.split(',');
    });
    const exited = new Promise((res) => child.once('exit', res));
    child.kill('SIGKILL');
    await exited;
    expect(committed).toHaveLength(2);
    // Every batch stops after its commit and before its XACK, so not one entry may have been
    // acknowledged, however far the child read ahead: each delivered entry is still pending, the
    // committed ones first of all. (A count of pending entries would pass with the committed batch
    // acknowledged early, since the batch read ahead stays pending.)
    const group = (await r.redis.xinfo('GROUPS', keys.avl)) as unknown[][];
    const lastDelivered = String(
      group.map((x) => Object.fromEntries(chunk(x))).find((x) => x.name === GROUPS.processors)?.['last-delivered-id'],
    );
    const delivered = ids.filter((id) => compareIds(id, lastDelivered) <= 0);
    const pending = (await r.redis.xpending(keys.avl, GROUPS.processors, '-', '+', 100)) as [string, ...unknown[]][];
    const acknowledged = delivered.filter((id) => !pending.some(([p]) => p === id));
    expect(delivered).toEqual(expect.arrayContaining(committed));
    expect(acknowledged).toEqual([]);
    // The committed entries' rows are there (a second batch may have committed before the kill).
    const stored = new Set((await rowsOf(dev.id)).map((x) => Number(x.t)));
    for (const id of committed) {
      const i = ids.indexOf(id);
      expect(records.slice(i * 10, i * 10 + 10).filter((x) => !stored.has(x.timestamp))).toEqual([]);
    }

    const p = await start(prefix, { PROCESS_CLAIM_IDLE_MS: '200' });
    await drained(keys.avl);
    const rows = await rowsOf(dev.id);
    expect(rows.map((x) => Number(x.t))).toEqual(records.map((x) => x.timestamp));
    expect(await metric(p, 'fleet_processor_claimed_entries_total')).toBeGreaterThanOrEqual(2);
    // The killed processor's batch was written a second time and skipped row by row.
    expect(await metric(p, 'fleet_processor_conflicts_skipped_total')).toBeGreaterThanOrEqual(20);
  });

  it('keeps devices.online / instance_id / last_seen_at true from connection events and heartbeats', async () => {
    const { prefix, keys } = freshKeys();
    const dev = await addDevice();
    const at = Date.now() - 1000;
    await r.redis.set(keys.heartbeat('ing-a'), '1', 'EX', 60);
    await r.redis.hset(keys.registry, dev.imei, encodeRegistryValue({ instance: 'ing-a', connectedAt: at }));
    await r.redis.xadd(
      keys.events,
      '*',
      ...encodeConnectionEvent({ type: 'connected', imei: dev.imei, instance: 'ing-a', at }),
    );
    const p = await start(prefix, {}, { sweepIntervalMs: 200 });
    await waitFor('online', async () => (await deviceState(dev.id)).online);
    let s = await deviceState(dev.id);
    expect(s.instance_id).toBe('ing-a');
    expect(Number(s.seen)).toBe(at);

    // The device moves to instance b; the old socket's disconnect is handled after the new connect.
    await r.redis.set(keys.heartbeat('ing-b'), '1', 'EX', 60);
    await r.redis.hset(keys.registry, dev.imei, encodeRegistryValue({ instance: 'ing-b', connectedAt: at + 500 }));
    await r.redis.xadd(
      keys.events,
      '*',
      ...encodeConnectionEvent({ type: 'connected', imei: dev.imei, instance: 'ing-b', at: at + 500 }),
    );
    await r.redis.xadd(
      keys.events,
      '*',
      ...encodeConnectionEvent({
        type: 'disconnected',
        imei: dev.imei,
        instance: 'ing-a',
        at: at + 600,
        reason: 'replaced',
      }),
    );
    await waitFor('on instance b', async () => (await deviceState(dev.id)).instance_id === 'ing-b');
    s = await deviceState(dev.id);
    expect(s.online).toBe(true);

    // Instance b dies without sending disconnects: its heartbeat expires.
    await r.redis.del(keys.heartbeat('ing-b'));
    await waitFor('offline after heartbeat expiry', async () => !(await deviceState(dev.id)).online);
    s = await deviceState(dev.id);
    expect(s.instance_id).toBeNull();
    // The counter moves just after the row is written: wait for it, then check it counted once.
    await waitFor(
      'the offline count',
      async () => (await metric(p, 'fleet_processor_devices_marked_offline_total')) >= 1,
    );
    expect(await metric(p, 'fleet_processor_devices_marked_offline_total')).toBe(1);
  });

  it('trims only entries every group has acknowledged', async () => {
    const { keys } = freshKeys();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await r.redis.xadd(keys.avl, '*', 'n', String(i)))!);
    expect(await trimAcknowledged(r.redis, keys.avl, 0, Date.now(), false)).toBe(0); // no group: keep all
    await r.redis.xgroup('CREATE', keys.avl, 'a', '0');
    await r.redis.xgroup('CREATE', keys.avl, 'b', '0');
    await r.redis.xreadgroup('GROUP', 'a', 'c1', 'STREAMS', keys.avl, '>');
    await r.redis.xack(keys.avl, 'a', ...ids);
    await r.redis.xreadgroup('GROUP', 'b', 'c1', 'COUNT', 6, 'STREAMS', keys.avl, '>');
    await r.redis.xack(keys.avl, 'b', ids[0]!, ids[1]!, ids[2]!, ids[4]!);
    // b still needs ids[3] (pending) and everything after ids[5] (not delivered).
    await trimAcknowledged(r.redis, keys.avl, 0, Date.now(), false);
    const left = (await r.redis.xrange(keys.avl, '-', '+')).map(([id]) => id);
    expect(left).toEqual(ids.slice(3));
    // A retention window keeps acknowledged entries younger than it.
    await r.redis.xack(keys.avl, 'b', ids[3]!, ids[5]!);
    await trimAcknowledged(r.redis, keys.avl, 3_600_000, Date.now(), false);
    expect(await r.redis.xlen(keys.avl)).toBe(7);
  });

  it('removes idle consumers only when they hold nothing', async () => {
    const { keys } = freshKeys();
    const id = (await r.redis.xadd(keys.avl, '*', 'n', '1'))!;
    await r.redis.xadd(keys.avl, '*', 'n', '2');
    await r.redis.xgroup('CREATE', keys.avl, 'g', '0');
    await r.redis.xreadgroup('GROUP', 'g', 'holder', 'COUNT', 1, 'STREAMS', keys.avl, '>');
    await r.redis.xreadgroup('GROUP', 'g', 'done', 'COUNT', 1, 'STREAMS', keys.avl, '>');
    const doneId = (
      (await r.redis.xreadgroup('GROUP', 'g', 'done', 'STREAMS', keys.avl, '0')) as [string, [string, string[]][]][]
    )[0]?.[1][0]?.[0];
    await r.redis.xack(keys.avl, 'g', doneId!);
    await new Promise((res) => setTimeout(res, 30));
    expect(await removeIdleConsumers(r.redis, keys.avl, 'g', 10)).toEqual(['done']);
    const pending = (await r.redis.xpending(keys.avl, 'g', '-', '+', 10)) as [string, string][];
    expect(pending.map(([pid, c]) => [pid, c])).toEqual([[id, 'holder']]);
  });
});

/** Runs `daemon replay-dead` as a child process; resolves with its exit code and stdout lines. */
function cli(prefix: string, args: string[]): Promise<{ code: number | null; lines: Record<string, string>[] }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'daemon/src/cli.ts', 'replay-dead', ...args], {
    cwd: new URL('../../../', import.meta.url).pathname,
    env: { ...process.env, ...processorEnv(db.connection, r.url, prefix) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  return new Promise((resolve) =>
    child.once('exit', (code) =>
      resolve({
        code,
        lines: out
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      }),
    ),
  );
}

/**
 * `daemon replay-dead` on dead letters a real processor wrote (unknown device, an invalid entry),
 * through the command line with the processor running: a frame dead-lettered twice (the device
 * resent it) is stored once, a second replay stores nothing, and what cannot become an entry
 * again is left where it is.
 */
describe('replay-dead', () => {
  it('replays dead letters once the cause is gone; replaying again stores nothing twice', async () => {
    const { prefix } = freshKeys();
    const keys = redisKeys(prefix);
    const imei = newImei();
    const a = track(3);
    const b = track(2, a[2]!.timestamp + 1000);
    // The device is not registered yet; it resends frame A (no ack came back).
    await r.redis.xadd(keys.telemetryAvl, '*', ...telemetryFields(imei, a));
    await r.redis.xadd(keys.telemetryAvl, '*', ...telemetryFields(imei, a));
    await r.redis.xadd(keys.telemetryAvl, '*', ...telemetryFields(imei, b));
    await r.redis.xadd(keys.telemetryAvl, '*', 'unexpected', 'fields');
    await start(prefix);
    await drained(keys.telemetryAvl);
    const dead = (await r.redis.xrangeBuffer(keys.telemetryDead, '-', '+')).map(([id, f]) => ({
      id: id.toString(),
      ...decodeDeadLetter(f),
    }));
    expect(dead.map((d) => d.cause).sort()).toEqual(['invalid', 'unknown_device', 'unknown_device', 'unknown_device']);
    const unknown = dead.filter((d) => d.cause === 'unknown_device');
    const invalid = dead.find((d) => d.cause === 'invalid')!;

    const listed = await cli(prefix, ['--list']);
    expect(listed.code).toBe(0);
    expect(listed.lines.map((l) => l.id)).toEqual(dead.map((d) => d.id));

    const [row] = await db.knex('devices').insert({ imei, name: imei, enabled: true }).returning('id');
    const rows = async () => Number((await db.knex('positions').where({ device: row.id }).count({ n: '*' }))[0]?.n);

    // One letter by id first, then the rest: the invalid entry cannot be rebuilt and stays.
    const one = await cli(prefix, ['--id', unknown[2]!.id]);
    expect(one.code).toBe(0);
    expect(one.lines).toEqual([expect.objectContaining({ replayed: unknown[2]!.id, imei })]);
    const all = await cli(prefix, ['--all']);
    expect(all.code).toBe(1);
    expect(all.lines.filter((l) => 'replayed' in l).map((l) => l.replayed)).toEqual([unknown[0]!.id, unknown[1]!.id]);
    expect(all.lines.filter((l) => 'skipped' in l).map((l) => l.skipped)).toEqual([invalid.id]);
    await drained(keys.telemetryAvl);
    await waitFor('the replayed records stored', async () => (await rows()) === 5);
    const fixTimes = await db.knex('positions').where({ device: row.id }).orderBy('fix_time').pluck('fix_time');
    expect(fixTimes.map((t: Date) => t.getTime())).toEqual([...a, ...b].map((x) => x.timestamp));
    expect(await r.redis.xlen(keys.telemetryDead)).toBe(1);

    // Again: nothing left to replay but the invalid one; a replayed id is gone; no row twice.
    const again = await replayDead(r.redis, keys, { all: true });
    expect(again.replayed).toEqual([]);
    expect(again.skipped.map((s) => s.id)).toEqual([invalid.id]);
    expect((await replayDead(r.redis, keys, { ids: [unknown[0]!.id] })).notFound).toEqual([unknown[0]!.id]);
    await drained(keys.telemetryAvl);
    expect(await rows()).toBe(5);
  });

  it('refuses ambiguous or malformed arguments', () => {
    expect(parseReplayArgs([]).kind).toBe('error');
    expect(parseReplayArgs(['--all', '--list']).kind).toBe('error');
    expect(parseReplayArgs(['--id', 'abc']).kind).toBe('error');
    expect(parseReplayArgs(['--id', '1-0', '--id', '2-0'])).toEqual({ kind: 'ids', ids: ['1-0', '2-0'] });
  });
});
