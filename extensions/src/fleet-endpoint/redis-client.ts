/**
 * One ioredis client per Directus process for the health route, configured from Directus's own
 * Redis variables. Kept on globalThis because a bundle reload re-imports this module and would
 * otherwise leak the previous connection.
 */
import { Redis } from 'ioredis';

const SLOT = Symbol.for('directus-extension-fleet.endpoint-redis');
type Slot = { url: string; client: Redis };
const holder = globalThis as unknown as Record<symbol, Slot | undefined>;

/** `REDIS` wins; otherwise `REDIS_HOST`/`REDIS_PORT`/`REDIS_USERNAME`/`REDIS_PASSWORD`; else null. */
export function redisUrlFromEnv(env: Record<string, unknown>): string | null {
  if (env.REDIS_ENABLED === false) return null;
  if (typeof env.REDIS === 'string' && env.REDIS) return env.REDIS;
  if (!env.REDIS_HOST) return null;
  const auth = env.REDIS_PASSWORD
    ? `${encodeURIComponent(String(env.REDIS_USERNAME ?? ''))}:${encodeURIComponent(String(env.REDIS_PASSWORD))}@`
    : '';
  return `redis://${auth}${env.REDIS_HOST}:${env.REDIS_PORT ?? 6379}`;
}

export function sharedRedis(url: string): Redis {
  const current = holder[SLOT];
  if (current && current.url === url && current.client.status !== 'end') return current.client;
  current?.client.disconnect();
  // Fail fast rather than retry for long: the panel polls again in a few seconds anyway.
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  client.on('error', () => {
    /* reported per request as 503; avoid unhandled 'error' events */
  });
  holder[SLOT] = { url, client };
  return client;
}
