/**
 * Redis for tests: the shared local Redis, isolated by a random key prefix per call.
 *
 *   const r = await createTestRedis();
 *   await r.redis.xadd(r.keys.telemetryAvl, '*', ...);   // keys = redisKeys(prefix) from the daemon contract
 *   // pass r.prefix to the code under test (FLEET_REDIS_PREFIX / startDirectus({ redisPrefix }))
 *   await r.cleanup();                                   // deletes only keys under r.prefix, closes the client
 *
 * Never FLUSHALL/FLUSHDB: other engineers and test files share this Redis.
 *
 * With `{ cluster }` (a `startRedisCluster()`), the same on a Redis Cluster: `redis` is a cluster
 * client, `keys` carry the cluster's hash tags and telemetry partitions, and `env` is what the
 * daemon and Directus need to use it (pass it on as extra environment).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  createRedisClient,
  type KeyLayout,
  keyLayoutFromEnv,
  type RedisKeys,
  type RedisTarget,
  redisKeys,
  redisTarget,
  scanKeys,
} from '../../daemon/src/contract/index.js';
import { TEST_REDIS_URL } from './constants.js';
import type { TestRedisCluster } from './redis-cluster.js';

export interface TestRedis {
  redis: Redis;
  /** e.g. `test:lq3k9a:1f2e3d4c:` */
  prefix: string;
  keys: RedisKeys;
  /** The shared Redis's URL (what `REDIS` says; in cluster mode Directus's own Redis). */
  url: string;
  /** Where the telemetry plane is (the cluster, when there is one). */
  target: RedisTarget;
  layout: Required<KeyLayout>;
  /** Environment for the code under test besides the prefix: `REDIS_CLUSTER_NODES` in cluster mode. */
  env: Record<string, string>;
  /** Deletes every key starting with `prefix` and closes `redis`. */
  cleanup(): Promise<void>;
}

export interface TestRedisOptions {
  cluster?: TestRedisCluster;
  /** TELEMETRY_PARTITIONS (default: the contract's default for the mode). */
  partitions?: number;
}

export function newRedisPrefix(): string {
  return `test:${Date.now().toString(36)}:${randomBytes(4).toString('hex')}:`;
}

/** Deletes the keys under a prefix (SCAN + UNLINK; the prefix must look like one of ours). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<void> {
  if (!prefix.startsWith('test:') || prefix.length < 10) throw new Error(`refusing to delete keys under "${prefix}"`);
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  // One key at a time: in a cluster the keys live in different slots.
  await Promise.all((await scanKeys(redis, pattern, 1000)).map((k) => redis.unlink(k)));
}

export async function createTestRedis(opts: TestRedisOptions = {}): Promise<TestRedis> {
  const prefix = newRedisPrefix();
  const env: Record<string, string> = { ...(opts.cluster?.env ?? {}) };
  if (opts.partitions !== undefined) env.TELEMETRY_PARTITIONS = String(opts.partitions);
  const target = redisTarget(env, TEST_REDIS_URL);
  const layout = keyLayoutFromEnv(env);
  const redis = createRedisClient(target, { lazyConnect: true, maxRetriesPerRequest: 2 });
  await redis.connect();
  return {
    redis,
    prefix,
    keys: redisKeys(prefix, layout),
    url: TEST_REDIS_URL,
    target,
    layout,
    env,
    async cleanup() {
      try {
        await deleteKeysWithPrefix(redis, prefix);
      } finally {
        redis.disconnect();
      }
    },
  };
}
