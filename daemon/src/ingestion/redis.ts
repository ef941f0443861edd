/**
 * Redis client settings for ingestion. The rule is "no ack unless Redis confirmed the write", so a
 * write must fail quickly when Redis is away rather than wait in a queue: no offline queue, no
 * per-request retries, and a command timeout for a server that accepts bytes but does not answer
 * (paused, swapping, stopped with SIGSTOP). Reconnection itself continues in the background.
 */
import type { Redis } from 'ioredis';
import {
  type ContractCommands,
  createRedisClient,
  defineContractScripts,
  describeRedis,
  type RedisTarget,
} from '../contract/index.js';

export type IngestRedis = Redis & ContractCommands;

export interface IngestRedisOptions {
  /**
   * A command without an answer after this long fails (the frame is then not acknowledged). null:
   * no per-command timer, for a client whose user times out whole batches (the stream writer).
   */
  commandTimeoutMs?: number | null;
  /** Lets callers tag the connection (`CLIENT LIST` shows it). */
  connectionName?: string;
}

/** A client for one Redis (a URL) or a cluster (see contract/redis.ts). */
export function createIngestRedis(target: string | RedisTarget, options: IngestRedisOptions = {}): IngestRedis {
  const redis = createRedisClient(typeof target === 'string' ? { kind: 'single', url: target } : target, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs === null ? undefined : (options.commandTimeoutMs ?? 5000),
    connectTimeout: 5000,
    // Keep trying to come back; each attempt waits a little longer, capped at 2 s.
    retryStrategy: (times) => Math.min(100 * times, 2000),
    connectionName: options.connectionName,
    lazyConnect: true,
  });
  // Errors surface on the commands that fail; the 'error' event alone would crash the process.
  redis.on('error', () => {});
  return defineContractScripts(redis);
}

/** Connects and waits until the client is ready (start-up fails clearly if Redis is away). */
export async function connectIngestRedis(redis: IngestRedis): Promise<void> {
  try {
    if (redis.status === 'wait') await redis.connect();
    else if (redis.status !== 'ready')
      await new Promise<void>((resolve, reject) => {
        redis.once('ready', resolve);
        redis.once('end', () => reject(new Error('Redis connection ended')));
      });
  } catch (err) {
    const where = describeRedis(redis);
    redis.disconnect();
    throw new Error(`${where} is not reachable: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}
