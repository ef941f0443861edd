/**
 * Pipeline health read from Redis: consumer lag and pending per group (lag on `telemetry:avl` is
 * the canary of the whole pipeline), dead letters, live ingestion instances and how many device
 * connections each holds. Read-only; every key name comes from the shared contract. With several
 * telemetry partitions each is listed as a stream of its own, and the canary, the processors'
 * progress and the dead letters are summed over them.
 */
import {
  compareIds,
  decodeRegistryValue,
  GROUPS,
  HEARTBEAT_TTL_SECONDS,
  type RedisKeys,
  scanKeys,
} from '@fleet/daemon/contract';
import type { Redis } from 'ioredis';

export interface GroupHealth {
  stream: string;
  group: string;
  consumers: number;
  pending: number;
  /** Entries not yet delivered to the group; null when Redis cannot tell (after XDEL/XTRIM). */
  lag: number | null;
  lastDeliveredId: string;
  /** Entries the group has read since it was created (null when Redis cannot tell). */
  entriesRead: number | null;
}

export interface StreamHealth {
  /** The key without the deployment prefix (`telemetry:avl`). */
  stream: string;
  length: number;
  groups: GroupHealth[];
}

export interface DeadLetterSummary {
  id: string;
  imei: string;
  error: string;
  /** invalid, undecodable, unknown_device, rejected or failures ('' for letters older than the field). */
  cause: string;
  deliveries: number;
  failedAt: number;
}

export interface InstanceHealth {
  id: string;
  /** Seconds until the heartbeat expires; an instance is dead once its key is gone. */
  ttlSeconds: number;
  /** The heartbeat value as written by the instance (parsed when it is JSON). */
  info: unknown;
  connections: number;
  outbound: { length: number; pending: number; lag: number | null };
}

export interface PipelineHealth {
  at: number;
  streams: StreamHealth[];
  /** The canary: lag + pending of the processors group on telemetry:avl. */
  telemetryBacklog: number;
  /** The processors group on telemetry:avl (null before it exists): rate and freshness come from it. */
  telemetryProcessors: { entriesRead: number | null; lastDeliveredId: string } | null;
  deadLetters: { total: number; recent: DeadLetterSummary[] };
  instances: InstanceHealth[];
  /** Registry entries naming an instance without a live heartbeat (orphaned sockets). */
  orphanedConnections: number;
  heartbeatTtlSeconds: number;
}

function pairs(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

async function groupsOf(redis: Redis, key: string, stream: string): Promise<{ length: number; groups: GroupHealth[] }> {
  const [length, info] = await Promise.all([
    redis.xlen(key),
    redis.xinfo('GROUPS', key).catch((err: Error) => {
      // A stream nobody has written to yet has no groups: healthy, just empty.
      if (/no such key/i.test(err.message)) return [];
      throw err;
    }),
  ]);
  const groups = (info as unknown[][]).map((g) => {
    const r = pairs(g);
    return {
      stream,
      group: String(r.name),
      consumers: Number(r.consumers ?? 0),
      pending: Number(r.pending ?? 0),
      lag: r.lag === null || r.lag === undefined ? null : Number(r.lag),
      lastDeliveredId: String(r['last-delivered-id'] ?? ''),
      // Redis 7 counts what the group has read: two readings make a rate for the health panel.
      entriesRead: r['entries-read'] === null || r['entries-read'] === undefined ? null : Number(r['entries-read']),
    };
  });
  return { length, groups };
}

async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  return [...new Set(await scanKeys(redis, pattern))];
}

/** Counts registry entries per instance with HSCAN, so a 100k-device registry is read in slices. */
async function connectionsPerInstance(redis: Redis, key: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(key, cursor, 'COUNT', 1000);
    cursor = next;
    for (let i = 1; i < flat.length; i += 2) {
      let instance: string;
      try {
        instance = decodeRegistryValue(flat[i] as string).instance;
      } catch {
        instance = '(unreadable)';
      }
      counts.set(instance, (counts.get(instance) ?? 0) + 1);
    }
  } while (cursor !== '0');
  return counts;
}

export async function pipelineHealth(redis: Redis, keys: RedisKeys, recentDead = 10): Promise<PipelineHealth> {
  const strip = (k: string) => k.slice(keys.prefix.length);
  const [partitions, events, responses, deadLens, deadRecents, heartbeatKeys, connections] = await Promise.all([
    Promise.all(keys.telemetry.map((t) => groupsOf(redis, t.avl, strip(t.avl)))),
    groupsOf(redis, keys.connectionsEvents, strip(keys.connectionsEvents)),
    groupsOf(redis, keys.commandsResponses, strip(keys.commandsResponses)),
    Promise.all(keys.telemetry.map((t) => redis.xlen(t.dead))),
    Promise.all(keys.telemetry.map((t) => redis.xrevrange(t.dead, '+', '-', 'COUNT', recentDead))),
    scanAll(redis, keys.heartbeatPattern),
    connectionsPerInstance(redis, keys.connectionsRegistry),
  ]);
  const deadLen = deadLens.reduce((a, b) => a + b, 0);
  const deadRecent = deadRecents
    .flat()
    .sort(([a], [b]) => compareIds(b, a))
    .slice(0, recentDead);

  const heartbeatPrefix = keys.heartbeat('');
  const instances = await Promise.all(
    heartbeatKeys.map(async (key): Promise<InstanceHealth | null> => {
      const id = key.slice(heartbeatPrefix.length);
      const outKey = keys.commandsOutbound(id);
      const [value, ttl, outbound] = await Promise.all([redis.get(key), redis.ttl(key), groupsOf(redis, outKey, '')]);
      if (value === null) return null; // expired between SCAN and GET
      const group = outbound.groups.find((g) => g.group === GROUPS.outbound);
      return {
        id,
        ttlSeconds: ttl,
        info: parseMaybeJson(value),
        connections: connections.get(id) ?? 0,
        outbound: { length: outbound.length, pending: group?.pending ?? 0, lag: group?.lag ?? null },
      };
    }),
  );
  const live = instances.filter((i): i is InstanceHealth => i !== null).sort((a, b) => a.id.localeCompare(b.id));
  const liveIds = new Set(live.map((i) => i.id));
  let orphaned = 0;
  for (const [id, n] of connections) if (!liveIds.has(id)) orphaned += n;

  const groups = partitions.map((p) => p.groups.find((g) => g.group === GROUPS.processors));
  const started = groups.filter((g): g is GroupHealth => g !== undefined);
  return {
    at: Date.now(),
    streams: [
      ...partitions.map((p, i) => ({ stream: strip(keys.telemetry[i]!.avl), ...p })),
      { stream: strip(keys.connectionsEvents), ...events },
      { stream: strip(keys.commandsResponses), ...responses },
    ],
    // No processors group yet means nothing has ever been consumed: everything in the stream is backlog.
    telemetryBacklog: partitions.reduce((n, p, i) => {
      const g = groups[i];
      return n + (g ? (g.lag ?? 0) + g.pending : p.length);
    }, 0),
    telemetryProcessors:
      started.length > 0
        ? {
            entriesRead: started.some((g) => g.entriesRead === null)
              ? null
              : started.reduce((n, g) => n + (g.entriesRead ?? 0), 0),
            lastDeliveredId: started
              .map((g) => g.lastDeliveredId)
              .sort(compareIds)
              .at(-1)!,
          }
        : null,
    deadLetters: {
      total: deadLen,
      recent: deadRecent.map(([id, flat]) => {
        const r = pairs(flat);
        return {
          id,
          imei: String(r.imei ?? ''),
          error: String(r.error ?? ''),
          cause: String(r.cause ?? ''),
          deliveries: Number(r.deliveries ?? 0),
          failedAt: Number(r.failedAt ?? 0),
        };
      }),
    },
    instances: live,
    orphanedConnections: orphaned,
    heartbeatTtlSeconds: HEARTBEAT_TTL_SECONDS,
  };
}

function parseMaybeJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
