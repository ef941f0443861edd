// The contract's fleetDispatchCommand script against a real Redis (own random key prefix).
import { randomBytes } from 'node:crypto';
import {
  decodeOutboundCommand,
  defineContractScripts,
  encodeOutboundCommand,
  encodeRegistryValue,
  redisKeys,
} from '@fleet/daemon/contract';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const keys = redisKeys(`test:cmdscript:${randomBytes(4).toString('hex')}:`);
let redis: ReturnType<typeof defineContractScripts<Redis>>;

const dispatch = (imei: string, commandId: string) =>
  redis.fleetDispatchCommand(
    keys.connectionsRegistry,
    keys.heartbeat(''),
    keys.commandsOutbound(''),
    imei,
    '1000',
    ...encodeOutboundCommand({ commandId, imei, text: 'getinfo', expiresAt: 1, attempt: 2 }),
  );

beforeAll(() => {
  redis = defineContractScripts(new Redis(url));
});
afterAll(async () => {
  const found = await redis.keys(`${keys.prefix}*`);
  if (found.length > 0) await redis.del(...found);
  await redis.quit();
});

describe('fleetDispatchCommand', () => {
  it('leaves the command undispatched when no instance holds the device', async () => {
    expect(await dispatch('111', 'c1')).toBeNull();
  });

  it('refuses an instance whose heartbeat expired, and queues nothing', async () => {
    await redis.hset(keys.connectionsRegistry, '222', encodeRegistryValue({ instance: 'dead-1', connectedAt: 5 }));
    expect(await dispatch('222', 'c2')).toBeNull();
    expect(await redis.exists(keys.commandsOutbound('dead-1'))).toBe(0);
  });

  it('XADDs the encoded command to the live holder, including instance ids with colons', async () => {
    await redis.hset(keys.connectionsRegistry, '333', encodeRegistryValue({ instance: 'host:a-1', connectedAt: 7 }));
    await redis.set(keys.heartbeat('host:a-1'), '1', 'EX', 90);
    const res = await dispatch('333', 'c3');
    expect(res?.[0]).toBe('host:a-1');
    const entries = await redis.xrange(keys.commandsOutbound('host:a-1'), '-', '+');
    expect(entries).toHaveLength(1);
    expect(entries[0]?.[0]).toBe(res?.[1]);
    expect(decodeOutboundCommand(entries[0]![1])).toEqual({
      commandId: 'c3',
      imei: '333',
      text: 'getinfo',
      payloadHex: '',
      expiresAt: 1,
      attempt: 2,
    });
  });

  it('follows the device when the registry moves it to another instance', async () => {
    await redis.set(keys.heartbeat('b'), '1', 'EX', 90);
    await redis.hset(keys.connectionsRegistry, '333', encodeRegistryValue({ instance: 'b', connectedAt: 9 }));
    expect((await dispatch('333', 'c4'))?.[0]).toBe('b');
    expect(await redis.xlen(keys.commandsOutbound('host:a-1'))).toBe(1);
    expect(await redis.xlen(keys.commandsOutbound('b'))).toBe(1);
  });
});
