/**
 * The contract's stream plumbing against a real Redis: what a writer encodes is what a reader
 * decodes after a trip through a stream, binary fields keep every byte, the scripts append
 * entries the message definitions read back, and the StreamReader reads in its order (own
 * pending, then entries others abandoned, then new), recovers a lost group and acks by policy.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestRedis, type TestRedis } from '../../../test/support/index.js';
import { LUA_DIR } from '../../scripts/contract-lua.js';
import {
  ConnectionEventMessage,
  DeadLetterMessage,
  decodeConnectionEvent,
  decodeOutboundCommand,
  decodeTelemetryEntry,
  defineContractScripts,
  deregisterConnection,
  encodeConnectionEvent,
  encodeOutboundCommand,
  encodeRegistryValue,
  encodeTelemetryEntry,
  type ReadBatch,
  readGroup,
  redisKeys,
  registerConnection,
  StreamReader,
  type StreamReaderOptions,
  TelemetryMessage,
} from '../../src/contract/index.js';
import { LUA_SOURCES } from '../../src/contract/lua/scripts.generated.js';

let r: TestRedis;
beforeAll(async () => {
  r = await createTestRedis();
});
afterAll(() => r.cleanup());

async function roundTrip(stream: string, fields: (string | Buffer)[]): Promise<Buffer[]> {
  const id = await r.redis.xadd(stream, '*', ...fields);
  const [entry] = await r.redis.xrangeBuffer(stream, id!, id!);
  return entry![1];
}

describe('message definitions', () => {
  it('a telemetry entry comes back from the stream with every frame byte, none re-encoded as text', async () => {
    const frame = Buffer.from([0, 0, 0, 0, 0xff, 0x80, 0x0a, 0x00, 0xc3, 0x28]);
    const entry = {
      imei: '356307042441013',
      codec: 142,
      transport: 'udp' as const,
      instance: 'i-1',
      receivedAt: 5,
      records: 1,
      frame,
    };
    const back = decodeTelemetryEntry(await roundTrip(r.keys.telemetryAvl, encodeTelemetryEntry(entry)));
    expect(back).toEqual(entry);
    expect(back.frame.equals(frame)).toBe(true);
  });

  it('encodes fields in the schema order and names the binary ones', () => {
    expect(TelemetryMessage.fields).toEqual([
      'imei',
      'codec',
      'transport',
      'instance',
      'receivedAt',
      'records',
      'frame',
    ]);
    expect([...TelemetryMessage.binary]).toEqual(['frame']);
    expect([...ConnectionEventMessage.binary]).toEqual([]);
  });

  it('a writer cannot put an invalid message on a stream, and a reader refuses a bad entry by field', () => {
    expect(() => encodeOutboundCommand({ commandId: '1', imei: 'not-digits', text: 'x', expiresAt: 1 })).toThrow(
      /IMEI/,
    );
    expect(() => decodeOutboundCommand(['commandId', '1', 'imei', '1', 'text', 'x', 'expiresAt', '-3'])).toThrow(
      /expiresAt/,
    );
  });

  it('a dead letter without a readable frame decodes with an empty one', async () => {
    const fields = DeadLetterMessage.encode({
      sourceId: '1-0',
      imei: '',
      transport: '',
      error: 'x',
      deliveries: 1,
      failedAt: 2,
    });
    const back = DeadLetterMessage.decode(await roundTrip(r.keys.telemetryDead, fields));
    expect(back.frame.length).toBe(0);
    expect(DeadLetterMessage.field(fields, 'error')).toBe('x');
  });
});

describe('Lua scripts', () => {
  it('the inlined module holds exactly the .lua files (run `npm run contract:lua` after editing one)', () => {
    const files = readdirSync(LUA_DIR).filter((f) => f.endsWith('.lua'));
    expect(Object.keys(LUA_SOURCES).sort()).toEqual(files.map((f) => f.replace(/\.lua$/, '')).sort());
    for (const f of files) {
      expect(LUA_SOURCES[f.replace(/\.lua$/, '') as keyof typeof LUA_SOURCES]).toBe(
        readFileSync(join(LUA_DIR, f), 'utf8'),
      );
    }
  });

  it('register and deregister append connection events the message definition reads back', async () => {
    const redis = defineContractScripts(r.redis);
    const value = encodeRegistryValue({ instance: 'i-1', connectedAt: 7, remote: '10.0.0.5:40000' });
    const event = { imei: '42', instance: 'i-1', at: 7, remote: '10.0.0.5:40000', transport: 'tcp' as const };
    expect(await registerConnection(redis, r.keys, value, { ...event, reason: 'handshake' })).toBe('');
    expect(await registerConnection(redis, r.keys, value, { ...event, reason: 'handshake' })).toBe(value);
    expect(await deregisterConnection(redis, r.keys, { ...event, at: 9, reason: 'closed' })).toBe(1);
    const events = await r.redis.xrangeBuffer(r.keys.connectionsEvents, '-', '+');
    expect(events.map(([, f]) => decodeConnectionEvent(f))).toEqual([
      { type: 'connected', ...event, reason: 'handshake' },
      { type: 'connected', ...event, reason: 'handshake' },
      { type: 'disconnected', ...event, at: 9, reason: 'closed' },
    ]);
  });

  it('dispatch finds the holder in a registry value carrying the device address', async () => {
    const redis = defineContractScripts(r.redis);
    const value = encodeRegistryValue({ instance: 'host:b-2', connectedAt: 7, remote: '10.0.0.5:40000' });
    await redis.hset(r.keys.connectionsRegistry, '43', value);
    await redis.set(r.keys.heartbeat('host:b-2'), '1', 'EX', 90);
    const command = encodeOutboundCommand({ commandId: 'c1', imei: '43', text: 'getinfo', expiresAt: 1 });
    const res = await redis.fleetDispatchCommand(
      r.keys.connectionsRegistry,
      r.keys.heartbeat(''),
      r.keys.commandsOutbound(''),
      '43',
      '1000',
      ...command,
    );
    expect(res?.[0]).toBe('host:b-2');
    const [entry] = await r.redis.xrangeBuffer(r.keys.commandsOutbound('host:b-2'), '-', '+');
    expect(decodeOutboundCommand(entry![1]).commandId).toBe('c1');
  });
});

let n = 0;
const event = (imei: string) => encodeConnectionEvent({ type: 'connected', imei, instance: 'i', at: 1 });
function options(stream: string | string[], extra: Partial<StreamReaderOptions> = {}): StreamReaderOptions {
  return { redis: r.redis, stream, group: 'g', consumer: 'c1', blockMs: 50, ...extra };
}
const ids = (b: ReadBatch<unknown>) => b.entries.map((e) => e.id);

describe('StreamReader', () => {
  it('reads its own pending entries, then entries other consumers abandoned, then new ones', async () => {
    const stream = `${r.prefix}order:${n++}`;
    await r.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM');
    const mine = [await r.redis.xadd(stream, '*', ...event('1')), await r.redis.xadd(stream, '*', ...event('2'))];
    await readGroup(r.redis, stream, 'g', 'c1', 10, '>', 0);
    const abandoned = await r.redis.xadd(stream, '*', ...event('3'));
    await readGroup(r.redis, stream, 'g', 'gone', 10, '>', 0);
    const fresh = await r.redis.xadd(stream, '*', ...event('4'));

    const reader = new StreamReader(ConnectionEventMessage, options(stream, { claimIdleMs: 0, deliveryCounts: true }));
    const history = await reader.read();
    expect([history.phase, ids(history)]).toEqual(['history', mine]);
    expect(history.entries.map((e) => e.deliveries)).toEqual([2, 2]);
    await reader.ack(ids(history));
    const claimed = await reader.read();
    expect([claimed.phase, ids(claimed)]).toEqual(['claimed', [abandoned]]);
    await reader.ack(ids(claimed));
    const news = await reader.read();
    expect([news.phase, ids(news)]).toEqual(['new', [fresh]]);
    expect(news.entries.map((e) => e.ok && e.value.imei)).toEqual(['4']);
  });

  it('creates its group again when Redis lost it, and reads what was written since', async () => {
    const stream = `${r.prefix}lost:${n++}`;
    const reader = new StreamReader(ConnectionEventMessage, options(stream));
    expect((await reader.read()).entries).toEqual([]);
    await r.redis.del(stream);
    const id = await r.redis.xadd(stream, '*', ...event('5'));
    let batch = await reader.read();
    if (batch.entries.length === 0) batch = await reader.read();
    expect(ids(batch)).toEqual([id]);
  });

  it('gives binary fields back byte for byte, and reports an entry it cannot decode instead of throwing', async () => {
    const stream = `${r.prefix}bin:${n++}`;
    const frame = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3]);
    const fields = encodeTelemetryEntry({
      imei: '1',
      codec: 8,
      transport: 'tcp',
      instance: 'i',
      receivedAt: 1,
      records: 1,
      frame,
    });
    await r.redis.xadd(stream, '*', ...fields);
    await r.redis.xadd(stream, '*', 'imei', 'x');
    const batch = await new StreamReader(TelemetryMessage, options(stream)).read();
    const [good, bad] = batch.entries;
    expect(good?.ok && good.value.frame.equals(frame)).toBe(true);
    expect(bad?.ok).toBe(false);
  });

  it('acknowledges a batch only once handled, handles a failed batch again first, and stops on abort', async () => {
    const stream = `${r.prefix}ack:${n++}`;
    const written = [await r.redis.xadd(stream, '*', ...event('6')), await r.redis.xadd(stream, '*', ...event('7'))];
    const abort = new AbortController();
    const reader = new StreamReader(ConnectionEventMessage, options(stream, { signal: abort.signal }));
    const seen: string[][] = [];
    const errors: unknown[] = [];
    await reader.run({
      ack: 'batch',
      retryDelayMs: () => 10,
      onError: (err) => errors.push(err),
      async handle(batch) {
        seen.push(ids(batch));
        if (seen.length === 1) {
          expect(Number((await r.redis.xpending(stream, 'g'))[0])).toBe(2);
          throw new Error('database away');
        }
        abort.abort();
      },
    });
    expect(seen).toEqual([written, written]);
    expect(errors).toHaveLength(1);
    expect(Number((await r.redis.xpending(stream, 'g'))[0])).toBe(0);
  });

  it('reads several streams as one (telemetry partitions): each entry names its stream and is acknowledged there', async () => {
    const streams = [0, 1, 2].map((i) => `${r.prefix}parts:${n}:${i}`);
    n++;
    for (const st of streams) await r.redis.xgroup('CREATE', st, 'g', '0', 'MKSTREAM');
    const pending = await r.redis.xadd(streams[2]!, '*', ...event('8'));
    await readGroup(r.redis, streams[2]!, 'g', 'c1', 10, '>', 0);
    const written = await Promise.all(streams.map((st, i) => r.redis.xadd(st, '*', ...event(String(10 + i)))));

    const reader = new StreamReader(ConnectionEventMessage, options(streams));
    const history = await reader.read();
    expect([history.phase, history.entries.map((e) => [e.stream, e.id])]).toEqual(['history', [[streams[2], pending]]]);
    const news = await reader.read();
    expect(news.phase).toBe('new');
    expect(news.entries.map((e) => [e.stream, e.id]).sort()).toEqual(streams.map((st, i) => [st, written[i]]).sort());
    await reader.ackEntries([...history.entries, ...news.entries]);
    for (const st of streams) expect(Number((await r.redis.xpending(st, 'g'))[0])).toBe(0);
  });
});

describe('key layout', () => {
  it('keeps the design names with one partition, and tags each partition and the connection plane for a cluster', () => {
    expect(redisKeys('').telemetryAvl).toBe('telemetry:avl');
    expect(redisKeys('').connectionsRegistry).toBe('connections:registry');
    const k = redisKeys('p:', { cluster: true, partitions: 12 });
    expect(k.telemetry).toHaveLength(12);
    // A partition's stream, dead letters and failure counts share one slot; the partitions spread
    // evenly over the slot space (one per twelfth), so 3 evenly split masters get 4 each.
    for (const t of k.telemetry) {
      const slot = calculateSlot(t.avl);
      expect([calculateSlot(t.dead), calculateSlot(t.failures)]).toEqual([slot, slot]);
      expect(Math.floor((slot * 12) / 16384)).toBe(t.index);
      expect(t.avl).toMatch(/^p:\{\d+\.\d+\}:telemetry:avl$/);
    }
    // Everything a connection script or the dispatch touches is in one slot.
    const plane = [k.connectionsRegistry, k.connectionsEvents, k.heartbeat('i-1'), k.commandsOutbound('i-2')];
    expect(new Set(plane.map((key) => calculateSlot(key))).size).toBe(1);
    // A device always maps to the same partition, and 1000 devices spread over all of them.
    expect(k.telemetryFor('356307042441013')).toBe(k.telemetryFor('356307042441013'));
    const used = new Set(Array.from({ length: 1000 }, (_, i) => k.telemetryFor(String(356307042441013 + i)).index));
    expect(used.size).toBe(12);
    expect(k.partitionOf(k.telemetry[5]!.avl)).toBe(k.telemetry[5]);
  });
});
