import { encodeDeadLetter, encodeRegistryValue, encodeTelemetryEntry, GROUPS, redisKeys } from '@fleet/daemon/contract';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipelineHealth } from './health.js';
import { healthLevel } from './health-level.js';

const prefix = `test:tele-health:${process.pid}:${Math.random().toString(36).slice(2)}:`;
const keys = redisKeys(prefix);
let redis: Redis;

async function cleanup() {
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
    cursor = next;
    if (batch.length) await redis.del(...batch);
  } while (cursor !== '0');
}

beforeAll(async () => {
  redis = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
  await redis.connect();
});
afterAll(async () => {
  await cleanup();
  await redis.quit();
});

describe('pipelineHealth', () => {
  it('reports an untouched deployment as empty, with nothing live', async () => {
    const h = await pipelineHealth(redis, keys);
    expect(h.streams.map((s) => [s.stream, s.length, s.groups.length])).toEqual([
      ['telemetry:avl', 0, 0],
      ['connections:events', 0, 0],
      ['commands:responses', 0, 0],
    ]);
    expect(h.telemetryBacklog).toBe(0);
    expect(h.instances).toEqual([]);
    expect(h.deadLetters).toEqual({ total: 0, recent: [] });
  });

  it('reports lag and pending of the processors group, dead letters and live instances with their connections', async () => {
    const frame = Buffer.from('000000000000000f08010000', 'hex');
    for (let i = 0; i < 7; i++) {
      await redis.xadd(
        keys.telemetryAvl,
        '*',
        ...encodeTelemetryEntry({
          imei: '356307042441013',
          codec: 8,
          transport: 'tcp',
          instance: 'ing-a',
          receivedAt: 1,
          records: 1,
          frame,
        }),
      );
    }
    await redis.xgroup('CREATE', keys.telemetryAvl, GROUPS.processors, '0');
    // a consumer takes 3 and acknowledges 1: 2 pending, 4 never delivered
    const read = (await redis.xreadgroup(
      'GROUP',
      GROUPS.processors,
      'c1',
      'COUNT',
      3,
      'STREAMS',
      keys.telemetryAvl,
      '>',
    )) as [string, [string, string[]][]][];
    await redis.xack(keys.telemetryAvl, GROUPS.processors, read[0]![1][0]![0]);

    await redis.xadd(
      keys.telemetryDead,
      '*',
      ...encodeDeadLetter({
        sourceId: '1-0',
        imei: '356307042441013',
        transport: 'tcp',
        error: 'bad crc',
        cause: 'undecodable',
        deliveries: 5,
        failedAt: 1234,
        frame,
      }),
    );

    await redis.set(keys.heartbeat('ing-a'), JSON.stringify({ pid: 1 }), 'EX', 90);
    await redis.set(keys.heartbeat('ing-b'), 'plain', 'EX', 90);
    await redis.hset(keys.connectionsRegistry, {
      '1': encodeRegistryValue({ instance: 'ing-a', connectedAt: 1 }),
      '2': encodeRegistryValue({ instance: 'ing-a', connectedAt: 2 }),
      '3': encodeRegistryValue({ instance: 'ing-b', connectedAt: 3 }),
      '4': encodeRegistryValue({ instance: 'ing-dead', connectedAt: 4 }),
    });
    await redis.xadd(keys.commandsOutbound('ing-a'), '*', 'commandId', '1');
    await redis.xgroup('CREATE', keys.commandsOutbound('ing-a'), GROUPS.outbound, '0');

    const h = await pipelineHealth(redis, keys);
    const avl = h.streams[0]!;
    expect(avl.length).toBe(7);
    expect(avl.groups).toEqual([
      expect.objectContaining({ group: GROUPS.processors, consumers: 1, pending: 2, lag: 4, entriesRead: 3 }),
    ]);
    expect(h.telemetryBacklog).toBe(6);
    expect(h.telemetryProcessors).toMatchObject({ entriesRead: 3 });
    expect(h.deadLetters.total).toBe(1);
    expect(h.deadLetters.recent[0]).toMatchObject({
      imei: '356307042441013',
      error: 'bad crc',
      cause: 'undecodable',
      deliveries: 5,
      failedAt: 1234,
    });

    expect(h.instances.map((i) => [i.id, i.connections])).toEqual([
      ['ing-a', 2],
      ['ing-b', 1],
    ]);
    expect(h.instances[0]!.info).toEqual({ pid: 1 });
    expect(h.instances[0]!.ttlSeconds).toBeGreaterThan(0);
    expect(h.instances[0]!.outbound).toEqual({ length: 1, pending: 0, lag: 1 });
    expect(h.orphanedConnections).toBe(1);

    expect(healthLevel(h, { lagWarning: 100 })).toBe('warning'); // the dead letter
    expect(healthLevel(h, { lagWarning: 100, deadLetterWarning: 10 })).toBe('ok');
    expect(healthLevel(h, { lagWarning: 5, deadLetterWarning: 10 })).toBe('warning');
    expect(healthLevel(h, { lagWarning: 1, lagCritical: 6, deadLetterWarning: 10 })).toBe('critical');
    expect(healthLevel({ ...h, instances: [] }, { lagWarning: 100, deadLetterWarning: 10 })).toBe('critical');
  });
});
