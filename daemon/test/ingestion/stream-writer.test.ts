/** The batched XADD writer against real Redis: one batch per tick, per-entry results, batch timeout. */
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type TestRedisCluster } from '../../../test/support/index.js';
import { connectIngestRedis, createIngestRedis } from '../../src/ingestion/redis.js';
import { MAX_TOLD_PER_TURN, StreamWriter } from '../../src/ingestion/stream-writer.js';
import { createTestRedis } from './support.js';

let r: Awaited<ReturnType<typeof createTestRedis>>;

beforeAll(async () => {
  r = await createTestRedis();
});

afterAll(async () => {
  await r?.cleanup();
});

describe('StreamWriter', () => {
  it('sends entries added in one tick as one batch and resolves each with its own id', async () => {
    const batches: number[] = [];
    const writer = new StreamWriter(r.redis, { onBatch: (n) => batches.push(n) });
    const key = `${r.prefix}writer:a`;
    const ids = await Promise.all(
      Array.from({ length: 120 }, (_, i) => writer.add(key, ['n', String(i), 'raw', Buffer.from([0, 255, i])])),
    );
    expect(batches).toEqual([120]);
    expect(new Set(ids).size).toBe(120);
    const entries = (await r.redis.xrangeBuffer(key, '-', '+')) as [Buffer, Buffer[]][];
    expect(entries.map(([id]) => id.toString())).toEqual(ids);
    // Binary values arrive byte for byte.
    expect(entries[7]?.[1][3]).toEqual(Buffer.from([0, 255, 7]));
  });

  it('appends a batch spanning several streams, with fields of every size, exactly as given', async () => {
    const batches: number[] = [];
    const writer = new StreamWriter(r.redis, { onBatch: (n) => batches.push(n) });
    // Lengths around each MessagePack size boundary the batch encoding crosses (31/32, 65535/65536).
    const sizes = [0, 1, 31, 32, 255, 65_535, 65_536, 200_000];
    const value = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) % 256));
    const streams = Array.from({ length: 3 }, (_, s) => `${r.prefix}writer:multi:${s}`);
    // An entry of 20 fields (a MessagePack array of more than 15 items), UTF-8 names and values.
    const wide = Array.from({ length: 10 }, (_, i) => [`f${i}·`, `v${i}€`]).flat();
    const sent = sizes.map((n, i) => ({
      key: streams[i % streams.length] as string,
      fields: ['n', String(i), 'raw', value(n, i), 'text', 'ü'.repeat(n % 40)],
    }));
    sent.push({ key: streams[1] as string, fields: wide });
    const ids = await Promise.all(sent.map((e) => writer.add(e.key, e.fields)));
    expect(batches).toEqual([sent.length]);
    for (const key of streams) {
      const entries = (await r.redis.xrangeBuffer(key, '-', '+')) as [Buffer, Buffer[]][];
      const expected = sent.flatMap((e, i) => (e.key === key ? [{ id: ids[i], fields: e.fields }] : []));
      expect(entries.map(([id, fields]) => ({ id: id.toString(), fields }))).toEqual(
        expected.map((e) => ({ id: e.id, fields: e.fields.map((f) => Buffer.from(f)) })),
      );
    }
  });

  it('splits a large backlog into batches of maxBatch', async () => {
    const batches: number[] = [];
    const writer = new StreamWriter(r.redis, { maxBatch: 50, onBatch: (n) => batches.push(n) });
    await Promise.all(Array.from({ length: 120 }, (_, i) => writer.add(`${r.prefix}writer:b`, ['n', String(i)])));
    expect(batches.sort((a, b) => b - a)).toEqual([50, 50, 20]);
    await writer.drained();
    expect(writer.pending).toBe(0);
  });

  it('tells a backlog its outcomes a bounded number per event-loop turn, in order, and all of them', async () => {
    const writer = new StreamWriter(r.redis, { maxBatch: 200 });
    const key = `${r.prefix}writer:turns`;
    const n = 3 * MAX_TOLD_PER_TURN;
    // The turn each sink heard in: a counter the check phase advances while outcomes are told.
    let turn = 0;
    let ticking = true;
    const tick = () => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const heard: Array<{ i: number; turn: number; id: string }> = [];
    await new Promise<void>((resolve, reject) => {
      for (let i = 0; i < n; i++) {
        writer.append(key, ['n', String(i)], {
          written: (id) => {
            heard.push({ i, turn, id });
            if (heard.length === n) resolve();
          },
          failed: reject,
        });
      }
    });
    ticking = false;
    expect(heard.map((h) => h.i)).toEqual(Array.from({ length: n }, (_, i) => i));
    const perTurn = new Map<number, number>();
    for (const h of heard) perTurn.set(h.turn, (perTurn.get(h.turn) ?? 0) + 1);
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(MAX_TOLD_PER_TURN);
    expect(perTurn.size).toBeGreaterThanOrEqual(3);
    const entries = (await r.redis.xrange(key, '-', '+')) as [string, string[]][];
    expect(entries.map(([id]) => id)).toEqual(heard.map((h) => h.id));
    expect(writer.pending).toBe(0);
  });

  // 3 entries go as plain XADDs, 12 as one script call: both answer each entry on its own.
  it.each([3, 12])('rejects only the entry Redis refused (%i entries in the batch)', async (n) => {
    const writer = new StreamWriter(r.redis);
    const good = `${r.prefix}writer:c${n}`;
    const notAStream = `${r.prefix}writer:string${n}`;
    await r.redis.set(notAStream, 'x');
    const results = await Promise.allSettled(
      Array.from({ length: n }, (_, i) => writer.add(i === 1 ? notAStream : good, ['n', String(i)])),
    );
    expect(results.map((x) => x.status)).toEqual(results.map((_, i) => (i === 1 ? 'rejected' : 'fulfilled')));
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(await r.redis.xlen(good)).toBe(n - 1);
  });

  it.each([2, 6])(
    'with waitReplicas, resolves no entry of a batch fewer replicas confirmed (%i entries)',
    async (n) => {
      // This Redis has no replica: WAIT answers 0 once its timeout is over.
      const writer = new StreamWriter(r.redis, { waitReplicas: 1, timeoutMs: 300 });
      const key = `${r.prefix}writer:d${n}`;
      const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => writer.add(key, ['n', String(i)])));
      expect(results.map((x) => x.status)).toEqual(results.map(() => 'rejected'));
      expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(
        new RegExp(`fewer than 1 replica\\(s\\) confirmed ${n} XADDs|did not answer ${n} XADDs within 300 ms`),
      );
      // The entries are in Redis all the same (not acknowledged: a device would send them again).
      expect(await r.redis.xlen(key)).toBe(n);
      expect(writer.pending).toBe(0);
    },
  );
});

describe('StreamWriter against a Redis that does not answer', () => {
  it('fails every entry of a batch left unanswered for timeoutMs, with one timer per batch', async () => {
    // A TCP server that answers the client's connection handshake (CLIENT SETINFO …) and then
    // nothing more: a Redis that stopped answering.
    const silent = createServer((s) => {
      s.on('error', () => {});
      s.on('data', (d) => {
        for (const _ of d.toString('latin1').matchAll(/SETINFO/gi)) s.write('+OK\r\n');
      });
    });
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    const port = (silent.address() as AddressInfo).port;
    const client = createIngestRedis(`redis://127.0.0.1:${port}`, { commandTimeoutMs: null });
    try {
      // The ready check would wait for INFO's answer; this server never sends one.
      client.options.enableReadyCheck = false;
      await client.connect();
      const batches: number[] = [];
      const writer = new StreamWriter(client, { timeoutMs: 200, onBatch: (n) => batches.push(n) });
      const started = Date.now();
      const results = await Promise.allSettled(Array.from({ length: 3 }, (_, i) => writer.add('k', ['n', String(i)])));
      expect(results.map((x) => x.status)).toEqual(['rejected', 'rejected', 'rejected']);
      expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/did not answer 3 XADDs within 200 ms/);
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
      expect(batches).toEqual([3]);
      expect(writer.pending).toBe(0);
    } finally {
      client.disconnect();
      silent.close();
    }
  });
});

describe('StreamWriter on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  let c: Awaited<ReturnType<typeof createTestRedis>>;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    c = await createTestRedis({ cluster, partitions: 6 });
  });

  afterAll(async () => {
    await c?.cleanup();
    await cluster?.stop();
  });

  it('splits a batch by partition (script calls and plain XADDs) and resolves it once a replica has it', async () => {
    const client = createIngestRedis(c.target, { commandTimeoutMs: null });
    await connectIngestRedis(client);
    const writer = new StreamWriter(client, { waitReplicas: 1, timeoutMs: 5000 });
    // Devices whose partitions get 10 entries (one script call each) next to one that gets 2 (XADDs).
    const imeis = Array.from({ length: 200 }, (_, i) => String(356307042440000 + i));
    const streams = [...new Set(imeis.map((imei) => c.keys.telemetryFor(imei).avl))].slice(0, 3);
    const sent = streams.flatMap((key, s) =>
      Array.from({ length: s === 2 ? 2 : 10 }, (_, i) => ({ key, fields: ['n', `${s}:${i}`] })),
    );
    const ids = await Promise.all(sent.map((e) => writer.add(e.key, e.fields)));
    for (const key of streams) {
      const entries = (await c.redis.xrange(key, '-', '+')) as [string, string[]][];
      expect(entries).toEqual(sent.flatMap((e, i) => (e.key === key ? [[ids[i], e.fields]] : [])));
    }
    expect(writer.pending).toBe(0);
    client.disconnect();
  });
});
