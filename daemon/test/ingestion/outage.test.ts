/**
 * "Acknowledge only what Redis holds": with Redis paused or stopped (a private redis-server, never
 * the shared one), a frame gets no acknowledgement and its connection is closed; once Redis is
 * back, the device's resend is accepted, so every frame ever acknowledged is in the stream.
 */
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeCommandResponse,
  decodeTelemetryEntry,
  encodeOutboundCommand,
  GROUPS,
  redisKeys,
} from '../../src/contract/index.js';
import { CommandSender } from '../../src/ingestion/commands.js';
import { createIngestMetrics } from '../../src/ingestion/metrics.js';
import { connectIngestRedis, createIngestRedis } from '../../src/ingestion/redis.js';
import { DeviceRegistry } from '../../src/ingestion/registry.js';
import type { Ingestion, IngestionOptions } from '../../src/ingestion/server.js';
import { StreamWriter } from '../../src/ingestion/stream-writer.js';
import { createMetricsRegistry } from '../../src/observability/metrics.js';
import { avlAck, encodeCodec12Response } from '../../src/protocol/index.js';
import { avlFrame, createTestDatabase, eventually, RawDevice, startOwnRedis, startTestIngestion } from './support.js';

const IMEI = '356307042441013';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.knex('devices').insert({ imei: IMEI, name: 'outage van', enabled: true });
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
  await db?.drop();
});

async function framesIn(url: string, prefix: string): Promise<Buffer[]> {
  const client = new Redis(url);
  try {
    const entries = (await client.xrangeBuffer(redisKeys(prefix).telemetryAvl, '-', '+')) as [Buffer, Buffer[]][];
    return entries.map(([, f]) => decodeTelemetryEntry(f).frame);
  } finally {
    client.disconnect();
  }
}

/**
 * An ingestion on `url` that gives up on a Redis command after 300 ms (what these tests provoke),
 * stopped after the file.
 */
async function ingestionOn(
  url: string,
  instanceId: string,
  prefix: string,
  extra: Partial<IngestionOptions> = {},
): Promise<Ingestion> {
  const ing = await startTestIngestion(db.knex, {
    instanceId,
    redisUrl: url,
    redisPrefix: prefix,
    redisCommandTimeoutMs: 300,
    shutdownTimeoutMs: 3000,
    ...extra,
  });
  cleanups.push(() => ing.stop());
  return ing;
}

/** A device connected to `port` and logged in (accepted). */
async function loggedIn(port: number): Promise<RawDevice> {
  const d = await RawDevice.connect(port);
  expect(await d.login(IMEI)).toBe(1);
  return d;
}

/** The device reconnects, logs in and sends `frame` again: it must be acknowledged with `records`. */
async function resendAcked(port: number, frame: Buffer, records: number): Promise<void> {
  const again = await loggedIn(port);
  again.send(frame);
  expect(await again.read(4)).toEqual(avlAck(records));
  again.close();
}

async function healthStatus(port: number | null): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
}

describe('Redis refusing writes', () => {
  it('paused writes (CLIENT PAUSE WRITE): no ack, connection closed; the resend is acked once Redis is back', async () => {
    const own = await startOwnRedis();
    cleanups.push(() => own.stop());
    const prefix = 'test:outage:pause:';
    const ing = await ingestionOn(own.url, 'outage-pause', prefix, { heartbeat: { refreshMs: 100 } });
    const admin = new Redis(own.url);
    cleanups.push(() => admin.disconnect());

    const acked: Buffer[] = [];
    const d = await loggedIn(ing.tcpPort);
    const f1 = avlFrame(2);
    d.send(f1);
    expect(await d.read(4)).toEqual(avlAck(2));
    acked.push(f1);

    await admin.call('CLIENT', 'PAUSE', '20000', 'WRITE');
    const f2 = avlFrame(3);
    d.send(f2);
    await d.whenClosed;
    expect(d.available).toBe(0);
    await admin.call('CLIENT', 'UNPAUSE');
    // The device's socket is gone, so once Redis answers its registry entry must be gone too.
    await eventually(
      async () => (await admin.hget(redisKeys(prefix).connectionsRegistry, IMEI)) === null,
      'stale registry entry removed',
    );

    // The device reconnects and resends the unacknowledged frame.
    await resendAcked(ing.tcpPort, f2, 3);
    acked.push(f2);

    const stored = await framesIn(own.url, prefix);
    for (const f of acked) expect(stored.some((s) => s.equals(f))).toBe(true);
    const text = await ing.registry.metrics();
    expect(text).toMatch(/fleet_ingest_stream_write_failures_total\S* [1-9]/);
  });

  it('stopped server: no ack and no handshake while it is down; after a restart the resend is acked', async () => {
    let own = await startOwnRedis({ persist: true });
    const { port, dir } = own;
    cleanups.push(() => own.stop());
    const prefix = 'test:outage:stop:';
    const ing = await ingestionOn(own.url, 'outage-stop', prefix, { metricsPort: 0 });

    const d = await loggedIn(ing.tcpPort);
    const first = avlFrame(1);
    d.send(first);
    expect(await d.read(4)).toEqual(avlAck(1));

    await own.stop(true);
    await eventually(async () => (await healthStatus(ing.metricsPort)) === 503, '/healthz reports Redis down');
    const lost = avlFrame(4);
    d.send(lost);
    await d.whenClosed;
    expect(d.available).toBe(0);

    // A handshake cannot be registered either: the device gets no answer and retries later.
    const during = await RawDevice.connect(ing.tcpPort);
    during.send(Buffer.concat([Buffer.from([0, 15]), Buffer.from(IMEI)]));
    await during.whenClosed;
    expect(during.available).toBe(0);

    own = await startOwnRedis({ port, dir, persist: true });
    await eventually(async () => (await healthStatus(ing.metricsPort)) === 200, '/healthz reports Redis back');
    // The first frame survived the crash (fsynced AOF). The deregistration Redis refused while it
    // was down is retried once it answers, so the registry stops naming this instance.
    const registry = new Redis(own.url);
    cleanups.push(() => registry.disconnect());
    await eventually(
      async () => (await registry.hget(redisKeys(prefix).connectionsRegistry, IMEI)) === null,
      'owed deregistration applied',
    );
    await resendAcked(ing.tcpPort, lost, 4);
    const stored = await framesIn(own.url, prefix);
    expect(stored.some((s) => s.equals(lost))).toBe(true);
    expect(stored.some((s) => s.equals(first))).toBe(true);
  });

  it('a command outcome Redis refused while down is reported (and acknowledged) once it is back', async () => {
    let own = await startOwnRedis({ persist: true });
    const { port, dir } = own;
    cleanups.push(() => own.stop());
    const prefix = 'test:outage:cmd:';
    const keys = redisKeys(prefix);
    const ing = await ingestionOn(own.url, 'outage-cmd', prefix, { metricsPort: 0 });
    const d = await loggedIn(ing.tcpPort);
    const admin = new Redis(own.url);
    await admin.xadd(
      keys.commandsOutbound('outage-cmd'),
      '*',
      ...encodeOutboundCommand({ commandId: 'k1', imei: IMEI, text: 'getinfo', expiresAt: Date.now() + 60_000 }),
    );
    const head = await d.read(8);
    await d.read(head.readUInt32BE(4) + 4);
    const outcomes = async (client: Redis) =>
      (await client.xrange(keys.commandsResponses, '-', '+')).map(([, f]) => decodeCommandResponse(f).outcome);
    await eventually(async () => (await outcomes(admin)).includes('sent'), 'sent reported');
    admin.disconnect();

    await own.stop(true);
    await eventually(async () => (await healthStatus(ing.metricsPort)) === 503, 'Redis down');
    // The device answers while Redis is away: the outcome cannot be written yet.
    d.send(encodeCodec12Response('INI:2019/7/22'));
    await eventually(
      async () => (await ing.registry.metrics()).includes('fleet_ingest_commands_total{outcome="answered"'),
      'answer received',
    );

    own = await startOwnRedis({ port, dir, persist: true });
    const after = new Redis(own.url);
    cleanups.push(() => after.disconnect());
    await eventually(async () => (await outcomes(after)).includes('answered'), 'answered reported after restart');
    // Outcomes are written at least once (a write Redis applied but answered after the 300 ms
    // timeout is written again; the extension applies them idempotently): each once, in order.
    expect([...new Set(await outcomes(after))]).toEqual(['sent', 'answered']);
    await eventually(async () => {
      const [n] = (await after.xpending(keys.commandsOutbound('outage-cmd'), GROUPS.outbound)) as [number];
      return n === 0;
    }, 'outbound entry acknowledged');
    d.close();
  });

  it('an outcome owed while only the response connection is away is written once that one is back', async () => {
    // Responses and XACKs go through two connections that reconnect on their own: the XACK one
    // coming back first must not be the outcome's only chance before the next heartbeat.
    const own = await startOwnRedis();
    cleanups.push(() => own.stop());
    const keys = redisKeys('test:outage:split:');
    const redis = createIngestRedis(own.url, { commandTimeoutMs: 300 });
    const reader = createIngestRedis(own.url, { commandTimeoutMs: 2300 });
    const streamRedis = createIngestRedis(own.url, { commandTimeoutMs: null });
    for (const c of [redis, reader, streamRedis]) {
      await connectIngestRedis(c);
      cleanups.push(() => c.disconnect());
    }
    const sender = new CommandSender({
      instanceId: 'split',
      keys,
      redis,
      reader,
      writer: new StreamWriter(streamRedis, { timeoutMs: 300 }),
      registry: new DeviceRegistry(redis, keys, 'split'),
      logger: pino({ level: 'silent' }),
      metrics: createIngestMetrics(createMetricsRegistry()),
      commandTimeoutMs: 5000,
      blockMs: 100,
    });
    await sender.start();
    cleanups.push(() => sender.stopReading());

    streamRedis.disconnect();
    const admin = new Redis(own.url);
    cleanups.push(() => admin.disconnect());
    await admin.xadd(
      keys.commandsOutbound('split'),
      '*',
      ...encodeOutboundCommand({ commandId: 's1', imei: IMEI, text: 'getinfo', expiresAt: Date.now() + 60_000 }),
    );
    // Nobody holds the device here: `not_held`, which the response connection cannot write yet.
    await eventually(() => sender.owedReports === 1, 'the outcome owed');
    const back = once(redis, 'ready');
    redis.disconnect(true);
    await back;
    await streamRedis.connect();
    await eventually(async () => {
      const outcomes = (await admin.xrange(keys.commandsResponses, '-', '+')).map(([, f]) => decodeCommandResponse(f));
      return outcomes.some((o) => o.commandId === 's1' && o.outcome === 'not_held');
    }, 'the owed outcome written');
    await eventually(async () => {
      const [n] = (await admin.xpending(keys.commandsOutbound('split'), GROUPS.outbound)) as [number];
      return n === 0 && sender.owedReports === 0;
    }, 'outbound entry acknowledged');
  });
});
