/**
 * TCP and UDP ingestion against real Redis, real PostgreSQL and real sockets: handshakes, framing
 * across reads, acknowledgements only for what the stream holds, CRC errors, registry and events.
 */

import fc from 'fast-check';
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeConnectionEvent,
  decodeRegistryValue,
  decodeTelemetryEntry,
  type RedisKeys,
} from '../../src/contract/index.js';
import type { Ingestion } from '../../src/ingestion/server.js';
import { avlAck, encodeImeiLogin, encodeUdpDatagram, udpAck } from '../../src/protocol/index.js';
import { encodableRecord } from '../protocol/helpers.js';
import {
  avlFrame,
  createTestDatabase,
  createTestRedis,
  eventually,
  RawDevice,
  REDIS_URL,
  startTestIngestion,
  udpRoundTrip,
} from './support.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Awaited<ReturnType<typeof createTestRedis>>;
let ing: Ingestion;
let keys: RedisKeys;
const devices: RawDevice[] = [];

const IMEI = '356307042441013';
const IMEI_2 = '356307042441014';
const DISABLED = '356307042441015';

async function device(): Promise<RawDevice> {
  const d = await RawDevice.connect(ing.tcpPort);
  devices.push(d);
  return d;
}

async function stream(): Promise<ReturnType<typeof decodeTelemetryEntry>[]> {
  const entries = (await r.redis.xrangeBuffer(keys.telemetryAvl, '-', '+')) as [Buffer, Buffer[]][];
  return entries.map(([, f]) => decodeTelemetryEntry(f));
}

async function metric(name: string): Promise<string> {
  const text = await ing.registry.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n');
}

beforeAll(async () => {
  db = await createTestDatabase();
  r = await createTestRedis();
  keys = r.keys;
  await db.knex('devices').insert([
    { imei: IMEI, name: 'truck 1', enabled: true },
    { imei: IMEI_2, name: 'truck 2', enabled: true },
    { imei: DISABLED, name: 'parked', enabled: false },
  ]);
  ing = await startTestIngestion(db.knex as Knex, {
    instanceId: 'tcp-test-a',
    redisUrl: REDIS_URL,
    redisPrefix: r.prefix,
    deviceCacheTtlMs: 200,
    udpPort: 0,
    metricsPort: 0,
  });
});

afterAll(async () => {
  for (const d of devices) d.close();
  await ing?.stop('test done');
  await r?.cleanup();
  await db?.drop();
});

describe('handshake', () => {
  it('accepts an enabled device, registers it and records a connected event', async () => {
    const d = await device();
    expect(await d.login(IMEI)).toBe(0x01);
    const value = await r.redis.hget(keys.connectionsRegistry, IMEI);
    expect(value).not.toBeNull();
    expect(decodeRegistryValue(value as string).instance).toBe('tcp-test-a');
    const events = (await r.redis.xrange(keys.connectionsEvents, '-', '+')).map(([, f]) => decodeConnectionEvent(f));
    expect(events.filter((e) => e.imei === IMEI && e.type === 'connected')).toHaveLength(1);
    d.close();
    // Deregistered on close (compare-and-delete) with a disconnected event.
    await eventually(async () => (await r.redis.hget(keys.connectionsRegistry, IMEI)) === null, 'deregistered');
    const after = (await r.redis.xrange(keys.connectionsEvents, '-', '+')).map(([, f]) => decodeConnectionEvent(f));
    expect(after.filter((e) => e.imei === IMEI).map((e) => e.type)).toEqual(['connected', 'disconnected']);
  });

  it('refuses an unknown IMEI with 0x00, closes, and counts it', async () => {
    const d = await device();
    expect(await d.login('123456789012345')).toBe(0x00);
    await d.whenClosed;
    expect(await r.redis.hget(keys.connectionsRegistry, '123456789012345')).toBeNull();
    expect(await metric('fleet_ingest_refusals_total')).toMatch(/reason="unknown_device".* 1/);
  });

  it('refuses a disabled device, and a device disabled in the database within the cache TTL', async () => {
    const d = await device();
    expect(await d.login(DISABLED)).toBe(0x00);
    await d.whenClosed;

    const ok = await device();
    expect(await ok.login(IMEI_2)).toBe(0x01);
    ok.close();
    await db.knex('devices').update({ enabled: false }).where({ imei: IMEI_2 });
    await eventually(async () => {
      const again = await device();
      const answer = await again.login(IMEI_2);
      again.close();
      return answer === 0x00;
    }, 'disabled device refused');
    await db.knex('devices').update({ enabled: true }).where({ imei: IMEI_2 });
  });

  it('does not ack anything before the handshake and closes on a frame without login', async () => {
    const d = await device();
    d.send(avlFrame(1));
    await d.whenClosed;
    expect(d.available).toBe(0);
    expect(await metric('fleet_ingest_refusals_total')).toMatch(/reason="frame_before_handshake"/);
  });
});

describe('frames', () => {
  it('acks a frame split into single bytes only once it is whole, and stores it raw', async () => {
    const before = (await stream()).length;
    const d = await device();
    expect(await d.login(IMEI)).toBe(0x01);
    const frame = avlFrame(3);
    for (let i = 0; i < frame.length; i++) {
      d.send(frame.subarray(i, i + 1));
      // Yield so the bytes really arrive in separate reads.
      if (i % 7 === 0) await new Promise((res) => setImmediate(res));
    }
    expect(await d.read(4)).toEqual(avlAck(3));
    const entries = await stream();
    expect(entries).toHaveLength(before + 1);
    const e = entries.at(-1);
    expect(e?.imei).toBe(IMEI);
    expect(e?.codec).toBe(0x8e);
    expect(e?.transport).toBe('tcp');
    expect(e?.instance).toBe('tcp-test-a');
    expect(e?.records).toBe(3);
    expect(e?.frame.equals(frame)).toBe(true);
    d.close();
  });

  it('handles the login and several frames merged into one write, acking each in order', async () => {
    const before = (await stream()).length;
    const d = await device();
    const frames = [avlFrame(1), avlFrame(2), avlFrame(5, 0x08)];
    d.send(Buffer.concat([encodeImeiLogin(IMEI), Buffer.from([0xff]), ...frames]));
    expect((await d.read(1))[0]).toBe(0x01);
    expect(await d.read(12)).toEqual(Buffer.concat([avlAck(1), avlAck(2), avlAck(5)]));
    const entries = (await stream()).slice(before);
    expect(entries.map((e) => e.records)).toEqual([1, 2, 5]);
    expect(entries.map((e) => e.frame.equals(frames[entries.indexOf(e)] as Buffer))).toEqual([true, true, true]);
    d.close();
  });

  it('acks every frame in order however the byte stream is cut into writes (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 120 }), { minLength: 1, maxLength: 30 }),
        fc.boolean(),
        async (counts, cuts, pings) => {
          const before = (await stream()).length;
          const frames = counts.map((n) => avlFrame(n));
          const parts = [encodeImeiLogin(IMEI)];
          for (const f of frames) {
            if (pings) parts.push(Buffer.from([0xff]));
            parts.push(f);
          }
          const bytes = Buffer.concat(parts);
          const d = await device();
          let at = 0;
          for (let i = 0; at < bytes.length; i++) {
            const size = cuts[i % cuts.length] as number;
            d.send(bytes.subarray(at, at + size));
            at += size;
            await new Promise((res) => setImmediate(res));
          }
          expect((await d.read(1))[0]).toBe(1);
          expect(await d.read(4 * frames.length)).toEqual(Buffer.concat(counts.map((n) => avlAck(n))));
          const stored = (await stream()).slice(before);
          expect(stored.map((e) => e.frame.toString('hex'))).toEqual(frames.map((f) => f.toString('hex')));
          d.close();
          await d.whenClosed;
        },
      ),
      { numRuns: 15 },
    );
  });

  it('answers a CRC mismatch with zero records and keeps the connection', async () => {
    const before = (await stream()).length;
    const d = await device();
    expect(await d.login(IMEI)).toBe(0x01);
    const bad = Buffer.from(avlFrame(2));
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0xff;
    d.send(bad);
    expect(await d.read(4)).toEqual(avlAck(0));
    expect(await stream()).toHaveLength(before);
    // Same socket still works.
    d.send(avlFrame(2));
    expect(await d.read(4)).toEqual(avlAck(2));
    expect(d.closed).toBe(false);
    expect(await stream()).toHaveLength(before + 1);
    expect(await metric('fleet_ingest_crc_errors_total')).toMatch(/transport="tcp".* 1/);
    d.close();
  });

  it('replaces the older socket when a device connects twice', async () => {
    const first = await device();
    expect(await first.login(IMEI)).toBe(0x01);
    const second = await device();
    expect(await second.login(IMEI)).toBe(0x01);
    await first.whenClosed;
    second.send(avlFrame(1));
    expect(await second.read(4)).toEqual(avlAck(1));
    const value = await r.redis.hget(keys.connectionsRegistry, IMEI);
    expect(value && decodeRegistryValue(value).instance).toBe('tcp-test-a');
    const events = (await r.redis.xrange(keys.connectionsEvents, '-', '+'))
      .map(([, f]) => decodeConnectionEvent(f))
      .filter((e) => e.imei === IMEI);
    // The replaced socket's disconnect is recorded before the new connect.
    expect(events.slice(-2).map((e) => [e.type, e.reason])).toEqual([
      ['disconnected', 'replaced'],
      ['connected', 'handshake'],
    ]);
    second.close();
  });
});

describe('session edge cases', () => {
  it('answers a repeated login of the same device on a live socket again, and refuses a different IMEI', async () => {
    const d = await device();
    expect(await d.login(IMEI)).toBe(0x01);
    expect(await d.login(IMEI)).toBe(0x01);
    d.send(avlFrame(1));
    expect(await d.read(4)).toEqual(avlAck(1));
    d.send(encodeImeiLogin(IMEI_2));
    await d.whenClosed;
    expect(d.available).toBe(0);
  });

  it('never answers a device-originated Codec 13 message with a record count', async () => {
    const d = await device();
    expect(await d.login(IMEI)).toBe(0x01);
    // Codec 13 (tachograph message, from the protocol reference), then a normal frame.
    d.send(
      Buffer.from(
        '00000000000000240d01060000001c642b3ad14754534c7c367c317c307c31323734393838347c317c0d0a010000ec11',
        'hex',
      ),
    );
    d.send(avlFrame(2));
    expect(await d.read(4)).toEqual(avlAck(2));
    expect(d.available).toBe(0);
    d.close();
  });
});

describe('udp', () => {
  it('writes the datagram and answers with both packet ids and the record count', async () => {
    const before = (await stream()).length;
    const datagram = encodeUdpDatagram(0xcafe, 0x07, IMEI, 0x08, [
      encodableRecord({ timestamp: 1_700_000_000_000, eventIoId: 1, io: { ids: [21, 1], values: [3, 1] } }),
    ]);
    const reply = await udpRoundTrip(ing.udpPort as number, datagram);
    expect(reply).toEqual(udpAck(0xcafe, 0x07, 1));
    expect(reply?.toString('hex')).toBe('0005cafe010701');
    const entries = (await stream()).slice(before);
    expect(entries).toHaveLength(1);
    expect(entries[0]?.transport).toBe('udp');
    expect(entries[0]?.frame.equals(datagram)).toBe(true);
  });

  it('ignores a malformed datagram and counts it', async () => {
    expect(await udpRoundTrip(ing.udpPort as number, Buffer.from('00ffcafe01', 'hex'), 300)).toBeNull();
    expect(await metric('fleet_ingest_invalid_frames_total')).toMatch(/transport="udp"/);
  });

  it('does not answer a datagram from an unknown device', async () => {
    const datagram = encodeUdpDatagram(1, 2, '999999999999999', 0x08, []);
    expect(await udpRoundTrip(ing.udpPort as number, datagram, 500)).toBeNull();
  });
});

describe('metrics endpoint', () => {
  it('exposes connection, frame and latency metrics and a healthy /healthz', async () => {
    const text = await (await fetch(`http://127.0.0.1:${ing.metricsPort}/metrics`)).text();
    for (const name of [
      'fleet_ingest_open_connections',
      'fleet_ingest_handshakes_total{result="accepted"',
      'fleet_ingest_frames_total{transport="tcp"',
      'fleet_ingest_records_total',
      'fleet_ingest_xadd_seconds_bucket',
      'fleet_ingest_ack_seconds_bucket',
      'fleet_ingest_bytes_in_total',
    ]) {
      expect(text).toContain(name);
    }
    const health = await fetch(`http://127.0.0.1:${ing.metricsPort}/healthz`);
    expect(health.status).toBe(200);
  });
});
