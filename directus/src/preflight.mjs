// @ts-check
/**
 * Checks the services the stack needs before anything starts, so a missing PostgreSQL, PostGIS or
 * Redis gives one sentence saying what to install or start instead of a stack trace.
 */
import { Redis } from 'ioredis';
import { checkPostgres } from './postgres.mjs';

/**
 * @param {string} url
 * @returns {Promise<string[]>}
 */
export async function checkRedis(url) {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const info = await redis.info('server');
    const version = /redis_version:(\d+)/.exec(info)?.[1];
    if (version && Number(version) < 7) return [`Redis at ${url} is version ${version}: Redis >= 7 is needed.`];
    return [];
  } catch (err) {
    return [
      `Redis is not reachable at ${url} (${/** @type {Error} */ (err).message}). ` +
        'Install and start Redis >= 7 (Debian/Ubuntu: `apt-get install redis-server`), or set REDIS in .env.',
    ];
  } finally {
    redis.disconnect();
  }
}

/**
 * @param {{ connection: import('./postgres.mjs').Connection, redisUrl: string }} opts
 * @returns {Promise<string[]>} problems, empty when everything is there
 */
export async function preflight({ connection, redisUrl }) {
  const [pg, redis] = await Promise.all([checkPostgres(connection), checkRedis(redisUrl)]);
  return [...pg, ...redis];
}
