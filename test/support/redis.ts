/**
 * Redis for tests: the shared local Redis, isolated by a random key prefix per call.
 *
 *   const r = await createTestRedis();
 *   await r.redis.xadd(r.keys.telemetryAvl, '*', ...);   // keys = redisKeys(prefix) from the daemon contract
 *   // pass r.prefix to the code under test (FLEET_REDIS_PREFIX / startDirectus({ redisPrefix }))
 *   await r.cleanup();                                   // deletes only keys under r.prefix, closes the client
 *
 * Never FLUSHALL/FLUSHDB: other engineers and test files share this Redis.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { type RedisKeys, redisKeys } from '../../daemon/src/contract/index.js';
import { TEST_REDIS_URL } from './constants.js';

export interface TestRedis {
  redis: Redis;
  /** e.g. `test:lq3k9a:1f2e3d4c:` */
  prefix: string;
  keys: RedisKeys;
  url: string;
  /** Deletes every key starting with `prefix` and closes `redis`. */
  cleanup(): Promise<void>;
}

export function newRedisPrefix(): string {
  return `test:${Date.now().toString(36)}:${randomBytes(4).toString('hex')}:`;
}

/** Deletes the keys under a prefix (SCAN + UNLINK; the prefix must look like one of ours). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
  if (!prefix.startsWith('test:') || prefix.length < 10) throw new Error(`refusing to delete keys under "${prefix}"`);
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys);
  } while (cursor !== '0');
}

export async function createTestRedis(): Promise<TestRedis> {
  const prefix = newRedisPrefix();
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  return {
    redis,
    prefix,
    keys: redisKeys(prefix),
    url: TEST_REDIS_URL,
    async cleanup() {
      try {
        await deleteKeysWithPrefix(redis, prefix);
      } finally {
        redis.disconnect();
      }
    },
  };
}
