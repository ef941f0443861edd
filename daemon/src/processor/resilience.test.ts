/**
 * The processor while its dependencies fail: a private PostgreSQL and a private Redis (AOF) are
 * restarted under load, never the shared servers. Every record whose XADD Redis confirmed must end
 * up as exactly one row.
 */
import { Redis, type RedisOptions } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type OwnPostgres, type OwnRedis, startOwnPostgres, startOwnRedis } from '../../scripts/lib/own-services.js';
import {
  newImei,
  processorConfig,
  silentLogger,
  telemetryFields,
  track,
  waitFor,
} from '../../test/processor/support.js';
import {
  decodeTelemetryEntry,
  encodeConnectionEvent,
  encodeRegistryValue,
  GROUPS,
  redisKeys,
} from '../contract/index.js';
import { decodeAvlFrame } from '../protocol/index.js';
import { runProcess } from './main.js';

let own: OwnPostgres;
let redisServer: OwnRedis;
let db: pg.Pool;

beforeAll(async () => {
  [own, redisServer] = await Promise.all([startOwnPostgres(), startOwnRedis({ persist: true })]);
  db = new pg.Pool({ ...own.connection, max: 2 });
  db.on('error', () => {});
});
afterAll(async () => {
  await db?.end();
  await Promise.allSettled([own?.stop(), redisServer?.stop()]);
});

async function addDevice(): Promise<{ imei: string; id: number }> {
  const imei = newImei();
  const res = await db.query('INSERT INTO devices (imei, name, enabled) VALUES ($1, $1, true) RETURNING id', [imei]);
  return { imei, id: Number(res.rows[0].id) };
}

async function sumMetric(p: Awaited<ReturnType<typeof runProcess>>, name: string, label?: [string, string]) {
  const m = (await p.registry.getMetricsAsJSON()).find((x) => x.name === name);
  return ((m?.values ?? []) as { value: number; labels: Record<string, unknown> }[])
    .filter((v) => !label || v.labels[label[0]] === label[1])
    .reduce((s, v) => s + v.value, 0);
}

/**
 * Writes frames (5 records each) for `durationMs`, calling `disrupt` at `atMs`. Returns the fix
 * times Redis confirmed. A failed XADD is retried with the same records, as a device resends.
 */
async function produce(
  producer: Redis,
  stream: string,
  imei: string,
  durationMs: number,
  atMs: number,
  disrupt: () => Promise<void>,
): Promise<number[]> {
  const acked: number[] = [];
  const start = Date.now();
  const t0 = Date.now() - 3_600_000;
  let n = 0;
  let disrupted: Promise<void> | undefined;
  while (Date.now() - start < durationMs) {
    if (!disrupted && Date.now() - start >= atMs) disrupted = disrupt();
    const records = track(5, t0 + n * 5000);
    for (;;) {
      try {
        await producer.xadd(stream, '*', ...telemetryFields(imei, records));
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    acked.push(...records.map((r) => r.timestamp));
    n++;
    await new Promise((r) => setTimeout(r, 10));
  }
  await disrupted;
  return acked;
}

async function drained(redis: Redis, stream: string) {
  await waitFor(
    'stream drained',
    async () => {
      const groups = (await redis.xinfo('GROUPS', stream)) as unknown[][];
      const g = groups.find((x) => x[1] === GROUPS.processors);
      if (!g) return false;
      const f = Object.fromEntries(
        g.map((v, i, a) => (i % 2 === 0 ? [String(v), a[i + 1]] : [])).filter((x) => x.length),
      );
      return Number(f.pending) === 0 && Number(f.lag) === 0;
    },
    60_000,
    100,
  );
}

async function fixTimes(deviceId: number): Promise<number[]> {
  const res = await db.query(
    'SELECT (extract(epoch FROM fix_time) * 1000)::bigint AS t FROM positions WHERE device = $1 ORDER BY fix_time',
    [deviceId],
  );
  return res.rows.map((r) => Number(r.t));
}

/**
 * A fresh key prefix, a device, a client of the private Redis (`redisOptions`) and a processor on
 * both servers; the processor and the client are closed when the test ends.
 */
async function processorRun(redisOptions: RedisOptions = {}) {
  const prefix = `t${Date.now().toString(36)}:`;
  const dev = await addDevice();
  const redis = new Redis(redisServer.url, redisOptions);
  redis.on('error', () => {});
  const p = await runProcess(processorConfig(own.connection, redisServer.url, prefix), silentLogger);
  onTestFinished(async () => {
    await p.stop();
    redis.disconnect();
  });
  return { keys: redisKeys(prefix), dev, redis, p };
}

describe('processor resilience', () => {
  it('loses and duplicates nothing when PostgreSQL restarts mid-run, and says so in metrics', async () => {
    const { keys, dev, redis: producer, p } = await processorRun();
    const acked = await produce(producer, keys.telemetryAvl, dev.imei, 3000, 800, () => own.restart('immediate', 1500));
    await drained(producer, keys.telemetryAvl);
    expect(await fixTimes(dev.id)).toEqual([...acked].sort((a, b) => a - b));
    expect(await sumMetric(p, 'fleet_processor_retries_total', ['dependency', 'postgres'])).toBeGreaterThan(0);
    expect(await sumMetric(p, 'fleet_processor_postgres_up')).toBe(1);
  });

  it('loses no confirmed or acknowledged record when Redis (AOF) is killed and restarted mid-run', async () => {
    const { keys, dev, redis: producer, p } = await processorRun({ maxRetriesPerRequest: 1 });
    const acked = await produce(producer, keys.telemetryAvl, dev.imei, 3000, 800, () => redisServer.restart(true));
    await drained(producer, keys.telemetryAvl);
    const stored = new Set(await fixTimes(dev.id));
    // Duplicates cannot be stored (positions has a unique key), so what can break is loss: no
    // record the producer was told is in Redis, and none of an entry the processor acknowledged
    // (after the drain, every entry in the stream), may be missing from the table.
    const acknowledged = (await producer.xrangeBuffer(keys.telemetryAvl, '-', '+')).flatMap(
      ([, fields]) => decodeAvlFrame(decodeTelemetryEntry(fields).frame).records,
    );
    expect(acknowledged.length).toBeGreaterThanOrEqual(acked.length);
    expect(acknowledged.filter((r) => !stored.has(r.timestamp)).length).toBe(0);
    expect(acked.filter((t) => !stored.has(t)).length).toBe(0);
    expect(await sumMetric(p, 'fleet_processor_redis_up')).toBe(1);
  });

  it('applies connection events that arrived while PostgreSQL was down', async () => {
    const { keys, dev, redis } = await processorRun();
    await redis.set(keys.heartbeat('ing-x'), '1', 'EX', 60);
    await redis.hset(keys.connectionsRegistry, dev.imei, encodeRegistryValue({ instance: 'ing-x', connectedAt: 1 }));
    const outage = own.restart('fast', 2000);
    await new Promise((res) => setTimeout(res, 500));
    await redis.xadd(
      keys.connectionsEvents,
      '*',
      ...encodeConnectionEvent({ type: 'connected', imei: dev.imei, instance: 'ing-x', at: Date.now() }),
    );
    await outage;
    await waitFor(
      'device online',
      async () => (await db.query('SELECT online FROM devices WHERE id = $1', [dev.id])).rows[0]?.online === true,
      30_000,
      100,
    );
  });
});
