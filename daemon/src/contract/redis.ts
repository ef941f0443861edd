/**
 * The one way the daemon and the extension open a Redis client for the telemetry plane: one
 * server (`REDIS`, a URL) or, when `REDIS_CLUSTER_NODES` lists seed nodes (`host:port,…`), a Redis
 * Cluster through ioredis's `Cluster` client.
 *
 * The factory returns the cluster client typed as `Redis`: ioredis gives both classes the same
 * command methods, so the code that sends commands needs no second path. The few things that do
 * differ in a cluster are handled where they happen, each through a function here:
 * `isClusterClient` (a pipeline must stay on one node, see the stream writer; a blocking read
 * covers one slot, see the stream reader) and `scanKeys` (SCAN walks one node; a cluster is
 * scanned master by master).
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import type { KeyLayout } from './keys.js';

export interface ClusterNode {
  host: string;
  port: number;
}

/** Where the telemetry plane lives: one server, or a cluster reached through its seed nodes. */
export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: ClusterNode[]; username?: string; password?: string };

/**
 * Seed nodes from `REDIS_CLUSTER_NODES`: `host:port` or `redis://[user:password@]host:port`,
 * separated by commas (Directus hands the extension a comma list as an array; both are accepted).
 * Empty or unset: null. A malformed entry throws, naming it.
 */
export function parseClusterNodes(
  value: unknown,
): { nodes: ClusterNode[]; username?: string; password?: string } | null {
  const items = (Array.isArray(value) ? value.map(String) : value == null ? [] : String(value).split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) return null;
  let username: string | undefined;
  let password: string | undefined;
  const nodes = items.map((item) => {
    let url: URL;
    try {
      url = new URL(item.includes('://') ? item : `redis://${item}`);
    } catch {
      throw new Error(`REDIS_CLUSTER_NODES: "${item}" is not host:port`);
    }
    const port = Number(url.port || 6379);
    if (!url.hostname || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`REDIS_CLUSTER_NODES: "${item}" is not host:port`);
    }
    if (url.password) password = decodeURIComponent(url.password);
    if (url.username) username = decodeURIComponent(url.username);
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
  });
  return { nodes, username, password };
}

/** The target named by an environment: `REDIS_CLUSTER_NODES` when set, else the `url` given (REDIS). */
export function redisTarget(env: Record<string, unknown>, url: string): RedisTarget {
  const cluster = parseClusterNodes(env.REDIS_CLUSTER_NODES);
  return cluster ? { kind: 'cluster', ...cluster } : { kind: 'single', url };
}

export interface RedisClientOptions {
  connectionName?: string;
  lazyConnect?: boolean;
  enableOfflineQueue?: boolean;
  /** null: a command waits for the connection to come back (never fails for it). */
  maxRetriesPerRequest?: number | null;
  commandTimeout?: number;
  connectTimeout?: number;
  /** Delay before reconnect attempt `times` (null: stop trying). */
  retryStrategy?: (times: number) => number | null;
}

/** A client for `target`: `Redis` for one server, ioredis's `Cluster` for a cluster (see the header). */
export function createRedisClient(target: RedisTarget, options: RedisClientOptions = {}): Redis {
  const { lazyConnect, enableOfflineQueue, retryStrategy, ...perNode } = options;
  if (target.kind === 'single') {
    return new Redis(target.url, { ...perNode, lazyConnect, enableOfflineQueue, retryStrategy });
  }
  const redisOptions: RedisOptions = { ...perNode, username: target.username, password: target.password };
  const clusterOptions: ClusterOptions = {
    redisOptions,
    lazyConnect,
    enableOfflineQueue,
    clusterRetryStrategy: retryStrategy ? (times) => retryStrategy(times) : undefined,
    // A failover moves slots: ask the cluster again soon rather than after the default 5 s.
    slotsRefreshInterval: 2000,
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
  };
  return new Cluster(target.nodes, clusterOptions) as unknown as Redis;
}

export function isClusterClient(redis: Redis): boolean {
  return (redis as unknown as { isCluster?: boolean }).isCluster === true;
}

/** Every key matching `pattern`: SCAN on one server, SCAN on each master of a cluster. */
export async function scanKeys(redis: Redis, pattern: string, count = 500): Promise<string[]> {
  let nodes: Redis[] = [redis];
  if (isClusterClient(redis)) {
    const cluster = redis as unknown as Cluster;
    // The masters are known once the client has read the slot map.
    if (cluster.status !== 'ready') await cluster.ping();
    nodes = cluster.nodes('master');
  }
  const out: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      out.push(...batch);
    } while (cursor !== '0');
  }
  return out;
}

/** Where the client connects, for error messages. */
export function describeRedis(redis: Redis): string {
  if (isClusterClient(redis)) {
    const seeds = (redis as unknown as { startupNodes?: { host?: string; port?: number }[] }).startupNodes ?? [];
    return `Redis Cluster (${seeds.map((n) => `${n.host}:${n.port}`).join(', ')})`;
  }
  return `Redis at ${redis.options.host}:${redis.options.port}`;
}

/**
 * Telemetry partitions in a cluster unless `TELEMETRY_PARTITIONS` says otherwise: enough for an
 * even share on 2, 3, 4 or 6 masters (one Redis keeps 1: one stream, the design's key names).
 */
export const CLUSTER_TELEMETRY_PARTITIONS = 12;
export const MAX_TELEMETRY_PARTITIONS = 1024;

/** The key layout an environment asks for (`REDIS_CLUSTER_NODES`, `TELEMETRY_PARTITIONS`). */
export function keyLayoutFromEnv(env: Record<string, unknown>): Required<KeyLayout> {
  const cluster = parseClusterNodes(env.REDIS_CLUSTER_NODES) !== null;
  const raw = env.TELEMETRY_PARTITIONS;
  const partitions = raw == null || raw === '' ? (cluster ? CLUSTER_TELEMETRY_PARTITIONS : 1) : Number(raw);
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_TELEMETRY_PARTITIONS) {
    throw new Error(`TELEMETRY_PARTITIONS: ${String(raw)} is not a whole number from 1 to ${MAX_TELEMETRY_PARTITIONS}`);
  }
  return { cluster, partitions };
}
