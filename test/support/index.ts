/**
 * The test harness, in one import:
 *
 *   import { createTestDatabase, createTestRedis, startDirectus, TEST_ADMIN } from '../../test/support/index.js';
 *
 * - createTestDatabase() → { name, connection, knex, drop() }   (./db.ts: clone of the schema template)
 * - createTestRedis()    → { redis, prefix, keys, url, cleanup() } (./redis.ts: random key prefix)
 * - startDirectus({ database, redisPrefix?, env? }) → { url, adminToken, login(), stop(), ... } (./directus.ts)
 * - startTestStack() → { db, redis, started(value, stop), stop() }: both of the above plus what a test
 *   starts on them, stopped newest first; useTestStack() registers one in beforeAll/afterAll, and
 *   useTestDatabase() / useTestRedis() one database / prefix for a suite (./stack.ts)
 * - TEST_ADMIN: the admin of every test database ({ email, password, token })
 * - waitFor(what, probe, timeoutMs?) polls until probe returns a value; freePort(); startOwnRedis() a private
 *   redis-server to kill or restart (./wait.ts, ./own-redis.ts); startRedisCluster() a private 3-master
 *   Redis Cluster with replicas, for `createTestRedis({ cluster })` (./redis-cluster.ts)
 * - startStudio({ database, redisPrefix?, env?, viewport? }) → { directus, browser, stop() } (./studio.ts)
 * - launchChromium({ viewport? }) → { context, close() }; studioLogin(page, url, { email, password }, timeoutMs) (./browser.ts)
 */
export { CHROMIUM_PATH, type LaunchedChromium, launchChromium, studioLogin } from './browser.js';
export { TEST_ADMIN, TEST_PG, TEST_REDIS_URL } from './constants.js';
export { createTestDatabase, type TestDatabase } from './db.js';
export { type StartDirectusOptions, startDirectus, type TestDirectus } from './directus.js';
export { type OwnRedis, type OwnRedisOptions, startOwnRedis } from './own-redis.js';
export { createTestRedis, type TestRedis, type TestRedisOptions } from './redis.js';
export { startRedisCluster, type TestRedisCluster } from './redis-cluster.js';
export { startTestStack, stopList, type TestStack, useTestDatabase, useTestRedis, useTestStack } from './stack.js';
export { type StudioSession, startStudio } from './studio.js';
export { freePort, waitFor } from './wait.js';
