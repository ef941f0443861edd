/**
 * A test file's own database and Redis prefix, and whatever the tests start on them: each thing is
 * registered with how to stop it, and `stop()` (in afterAll) stops them newest first, every one
 * even if another fails, then reports the first failure.
 */
import { afterAll, beforeAll } from 'vitest';
import { createTestDatabase, type TestDatabase } from './db.js';
import { createTestRedis, type TestRedis, type TestRedisOptions } from './redis.js';

export interface TestStack {
  db: TestDatabase;
  redis: TestRedis;
  /** Registers `value` to be stopped with `stop(value)`; returns it. */
  started<T>(value: T, stop: (value: T) => Promise<unknown> | unknown): T;
  stop(): Promise<void>;
}

export function stopList(): Pick<TestStack, 'started' | 'stop'> {
  const stops: (() => Promise<unknown> | unknown)[] = [];
  return {
    started(value, stop) {
      stops.push(() => stop(value));
      return value;
    },
    async stop() {
      let first: unknown;
      for (const stop of stops.splice(0).reverse()) {
        try {
          await stop();
        } catch (err) {
          first ??= err;
        }
      }
      if (first !== undefined) throw first;
    },
  };
}

/**
 * `redis`: as `createTestRedis` (a Redis Cluster with `{ cluster }`; the stack then owns the
 * cluster and stops it last).
 */
export async function startTestStack(redis: TestRedisOptions = {}): Promise<TestStack> {
  const list = stopList();
  if (redis.cluster) list.started(redis.cluster, (c) => c.stop());
  const [db, r] = await Promise.all([createTestDatabase(), createTestRedis(redis)]);
  list.started(db, (d) => d.drop());
  list.started(r, (x) => x.cleanup());
  return { db, redis: r, ...list };
}

/**
 * Registers the file's beforeAll (startTestStack) and afterAll (its stop), and returns the stack;
 * its fields are usable from the file's own beforeAll on, which runs after this one.
 */
export function useTestStack(): TestStack {
  return registered(
    'the test stack',
    () => startTestStack(),
    (s) => s.stop(),
  );
}

/**
 * `create()` in the enclosing suite's beforeAll and `release()` in its afterAll; the returned object
 * reads through to what `create()` made (usable from the suite's own beforeAll on).
 */
function registered<T extends object>(what: string, create: () => Promise<T>, release: (v: T) => Promise<unknown>): T {
  let value: T | undefined;
  beforeAll(async () => {
    value = await create();
  });
  afterAll(async () => {
    if (value) await release(value);
  });
  return new Proxy({} as T, {
    get(_target, key) {
      if (!value) throw new Error(`${what} is used before its beforeAll ran`);
      // Not bound: the harness's objects are plain (closures), and binding would strip a knex
      // instance (a function) of its properties.
      return Reflect.get(value, key);
    },
  });
}

/** A test database for the enclosing suite: created in its beforeAll, dropped in its afterAll. */
export function useTestDatabase(): TestDatabase {
  return registered('the test database', createTestDatabase, (db) => db.drop());
}

/** A Redis key prefix for the enclosing suite: made in its beforeAll, its keys deleted in its afterAll. */
export function useTestRedis(): TestRedis {
  return registered('the test Redis', createTestRedis, (r) => r.cleanup());
}
