/** The batched XADD writer against real Redis: one pipeline per tick, per-entry results. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamWriter } from '../../src/ingestion/stream-writer.js';
import { createTestRedis } from './support.js';

let r: Awaited<ReturnType<typeof createTestRedis>>;

beforeAll(async () => {
  r = await createTestRedis();
});

afterAll(async () => {
  await r?.cleanup();
});

describe('StreamWriter', () => {
  it('sends entries added in one tick as one pipeline and resolves each with its own id', async () => {
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

  it('splits a large backlog into pipelines of maxBatch', async () => {
    const batches: number[] = [];
    const writer = new StreamWriter(r.redis, { maxBatch: 50, onBatch: (n) => batches.push(n) });
    await Promise.all(Array.from({ length: 120 }, (_, i) => writer.add(`${r.prefix}writer:b`, ['n', String(i)])));
    expect(batches.sort((a, b) => b - a)).toEqual([50, 50, 20]);
    await writer.drained();
    expect(writer.pending).toBe(0);
  });

  it('rejects only the entry Redis refused', async () => {
    const writer = new StreamWriter(r.redis);
    const notAStream = `${r.prefix}writer:string`;
    await r.redis.set(notAStream, 'x');
    const results = await Promise.allSettled([
      writer.add(`${r.prefix}writer:c`, ['n', '1']),
      writer.add(notAStream, ['n', '2']),
      writer.add(`${r.prefix}writer:c`, ['n', '3']),
    ]);
    expect(results.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(await r.redis.xlen(`${r.prefix}writer:c`)).toBe(2);
  });
});
