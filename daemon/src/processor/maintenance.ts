/**
 * Periodic upkeep of the telemetry stream: the consumer-lag gauges (the pipeline's canary) and
 * trimming of entries every group has acknowledged; and of the positions partitions
 * (partitions.ts), at start and then every `partitions.intervalMs`.
 */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { GROUPS, type RedisKeys } from '../contract/index.js';
import type { Logger } from '../observability/logger.js';
import { errorMessage } from './errors.js';
import type { ProcessorMetrics } from './metrics.js';
import { maintainPartitions, type PartitionUpkeep } from './partitions.js';
import { groupsInfo, removeIdleConsumers, trimAcknowledged } from './stream.js';

export interface MaintenanceOptions {
  keys: RedisKeys;
  /** Lag gauges refresh. */
  lagIntervalMs: number;
  trimIntervalMs: number;
  /** Acknowledged entries younger than this are kept (replay after a parser fix). */
  retainMs: number;
  /** Consumers idle this long with nothing pending are removed from the processors groups. */
  consumerIdleMs: number;
  partitions: PartitionUpkeep & { intervalMs: number };
}

/**
 * Refreshes the lag/pending/length gauges (and the dead-letter count), summed over the telemetry
 * partitions; returns the processors group's figures (lag null when a partition's is unknown).
 */
export async function refreshLag(
  redis: Redis,
  keys: RedisKeys,
  metrics: ProcessorMetrics,
): Promise<{ lag: number | null; pending: number }> {
  const parts = await Promise.all(
    keys.telemetry.map(async (t) => {
      const [groups, length, dead] = await Promise.all([
        groupsInfo(redis, t.avl),
        redis.xlen(t.avl),
        redis.xlen(t.dead),
      ]);
      const g = groups.find((x) => x.name === GROUPS.processors);
      return { lag: g ? g.lag : length, pending: g?.pending ?? 0, length, dead };
    }),
  );
  const sum = (f: (p: (typeof parts)[number]) => number) => parts.reduce((n, p) => n + f(p), 0);
  const lag = parts.some((p) => p.lag === null) ? null : sum((p) => p.lag ?? 0);
  const pending = sum((p) => p.pending);
  const length = sum((p) => p.length);
  const dead = sum((p) => p.dead);
  if (lag !== null) metrics.lag.set(lag);
  metrics.pending.set(pending);
  metrics.streamLength.set(length);
  metrics.deadLength.set(dead);
  return { lag, pending };
}

export function startMaintenance(
  opts: MaintenanceOptions,
  deps: { redis: Redis; pool: pg.Pool; metrics: ProcessorMetrics; logger: Logger },
): { stop(): void } {
  const { redis, pool, metrics, logger } = deps;
  let busy = false;
  const partitions = () =>
    maintainPartitions(pool, opts.partitions)
      .then(({ created, dropped }) => {
        if (created > 0 || dropped.length > 0) logger.info({ created, dropped }, 'positions partitions maintained');
      })
      .catch((err: unknown) =>
        logger.warn({ err: errorMessage(err) }, 'positions partition upkeep failed; will retry'),
      );
  void partitions();
  const partitionTimer = setInterval(partitions, opts.partitions.intervalMs);
  const lagTimer = setInterval(() => {
    refreshLag(redis, opts.keys, metrics).catch(() => {});
  }, opts.lagIntervalMs);
  const trimTimer = setInterval(() => {
    if (busy) return;
    busy = true;
    const streams = opts.keys.telemetry.map((t) => t.avl);
    Promise.all(streams.map((s) => trimAcknowledged(redis, s, opts.retainMs)))
      .then(async (trimmed) => {
        const n = trimmed.reduce((a, b) => a + b, 0);
        if (n > 0) metrics.trimmed.inc(n);
        for (const stream of [...streams, opts.keys.connectionsEvents]) {
          const gone = await removeIdleConsumers(redis, stream, GROUPS.processors, opts.consumerIdleMs);
          if (gone.length > 0) logger.info({ stream, consumers: gone }, 'removed idle consumers holding nothing');
        }
      })
      .catch((err: unknown) => logger.warn({ err: errorMessage(err) }, 'stream trim failed; will retry'))
      .finally(() => {
        busy = false;
      });
  }, opts.trimIntervalMs);
  lagTimer.unref();
  trimTimer.unref();
  partitionTimer.unref();
  return {
    stop() {
      clearInterval(lagTimer);
      clearInterval(trimTimer);
      clearInterval(partitionTimer);
    },
  };
}
