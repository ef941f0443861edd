/**
 * `daemon process`: wires the processor's parts to Redis, PostgreSQL and the metrics server.
 * The logic lives in consumer.ts (telemetry → rows), device-state.ts (connections → online state)
 * and maintenance.ts (lag, trimming).
 */
import pg from 'pg';
import { type Config, redisKeysOf, redisTargetOf } from '../config.js';
import { createRedisClient } from '../contract/index.js';
import { databaseConnection } from '../db.js';
import { combineProbes, redisProbe } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import { createMetricsRegistry, type Registry, startObservabilityServer } from '../observability/metrics.js';
import { TelemetryConsumer } from './consumer.js';
import { DeviceStateConsumer } from './device-state.js';
import { errorMessage } from './errors.js';
import { startMaintenance } from './maintenance.js';
import { createProcessorMetrics } from './metrics.js';

export interface RunningProcessor {
  stop(reason?: string): Promise<void>;
  /** Port of /metrics and /healthz (useful when configured as 0). */
  readonly metricsPort: number;
  readonly registry: Registry;
}

/** Intervals not worth a configuration variable; tests shorten them through `overrides`. */
export interface ProcessorTuning {
  claimIntervalMs: number;
  sweepIntervalMs: number;
  lagIntervalMs: number;
  trimIntervalMs: number;
  retainMs: number;
  /** Batches written concurrently. */
  maxInFlight: number;
  afterCommit?: (ids: readonly string[]) => Promise<void>;
}

/**
 * Test-only: with FLEET_TEST_PAUSE_AFTER_COMMIT=1 the process prints a marker after its first
 * commit and then hangs before acknowledging, so a test can kill -9 it at exactly that point.
 * Unset (always, outside tests) it does nothing.
 */
function testHookFromEnv(): ProcessorTuning['afterCommit'] {
  if (process.env.FLEET_TEST_PAUSE_AFTER_COMMIT !== '1') return undefined;
  return async (ids) => {
    process.stdout.write(`FLEET_TEST_COMMITTED ${ids.join(',')}\n`);
    await new Promise(() => {});
  };
}

export async function runProcess(
  config: Config,
  logger: Logger,
  overrides: Partial<ProcessorTuning> = {},
): Promise<RunningProcessor> {
  const tuning: ProcessorTuning = {
    claimIntervalMs: Math.max(100, Math.min(config.PROCESS_CLAIM_IDLE_MS, 10_000)),
    sweepIntervalMs: 15_000,
    lagIntervalMs: 2_000,
    trimIntervalMs: 30_000,
    retainMs: 60_000,
    maxInFlight: 2,
    afterCommit: testHookFromEnv(),
    ...overrides,
  };
  const log = logger.child({ role: 'process' });
  const keys = redisKeysOf(config);
  const registry = createMetricsRegistry({
    defaultLabels: { role: 'process', instance_id: config.INSTANCE_ID },
    processMetrics: true,
  });
  const metrics = createProcessorMetrics(registry);

  // Commands wait for a reconnect instead of failing (maxRetriesPerRequest: null): during a Redis
  // outage the loop simply stalls, unacknowledged, and resumes where it was.
  let redisDownLogged = false;
  const connect = (name: string) => {
    const r = createRedisClient(redisTargetOf(config), {
      maxRetriesPerRequest: null,
      connectionName: `fleet-processor-${name}`,
      retryStrategy: (times) => Math.min(100 * times, 2000),
    });
    r.on('error', (err) => {
      metrics.redisUp.set(0);
      if (!redisDownLogged) log.error({ err: errorMessage(err), connection: name }, 'Redis unavailable; waiting');
      redisDownLogged = true;
    });
    r.on('ready', () => {
      metrics.redisUp.set(1);
      if (redisDownLogged) log.info({ connection: name }, 'Redis connection ready');
      redisDownLogged = false;
    });
    return r;
  };
  const redis = connect('cmd');
  const reader = connect('telemetry');
  const eventsReader = connect('events');

  const pool = new pg.Pool({
    ...databaseConnection(config),
    max: 6,
    application_name: 'fleet-processor',
    connectionTimeoutMillis: 5_000,
    statement_timeout: 60_000,
  });
  // An idle client dies when PostgreSQL restarts: that must not crash the process.
  pool.on('error', (err) => log.warn({ err: errorMessage(err) }, 'idle database connection lost'));

  const consumer = new TelemetryConsumer(
    {
      keys,
      consumer: config.INSTANCE_ID,
      batchSize: config.PROCESS_BATCH_SIZE,
      blockMs: config.PROCESS_BLOCK_MS,
      claimIdleMs: config.PROCESS_CLAIM_IDLE_MS,
      claimIntervalMs: tuning.claimIntervalMs,
      maxInFlight: tuning.maxInFlight,
      writeMethod: config.PROCESS_WRITE_METHOD,
      maxFailures: config.PROCESS_MAX_FAILURES,
      deadMaxLen: config.PROCESS_DEAD_MAXLEN,
      futureMarginMs: config.FUTURE_MARGIN_HOURS * 3_600_000,
      maxSpeedKmh: config.MAX_PLAUSIBLE_SPEED_KMH,
      markHistory: config.HISTORY_ENABLED,
      afterCommit: tuning.afterCommit,
    },
    { reader, redis, pool, logger: log, metrics },
  );
  const deviceState = new DeviceStateConsumer(
    {
      keys,
      consumer: config.INSTANCE_ID,
      batchSize: config.PROCESS_BATCH_SIZE,
      blockMs: config.PROCESS_BLOCK_MS,
      sweepIntervalMs: tuning.sweepIntervalMs,
    },
    { reader: eventsReader, redis, pool, logger: log, metrics },
  );
  const maintenance = startMaintenance(
    {
      keys,
      lagIntervalMs: tuning.lagIntervalMs,
      trimIntervalMs: tuning.trimIntervalMs,
      retainMs: tuning.retainMs,
      consumerIdleMs: 3_600_000,
      partitions: {
        monthsAhead: config.POSITIONS_PARTITIONS_AHEAD,
        retentionMonths: config.POSITIONS_RETENTION_MONTHS ?? null,
        intervalMs: 3_600_000,
      },
    },
    { redis, pool, metrics, logger: log },
  );

  let server: Awaited<ReturnType<typeof startObservabilityServer>>;
  try {
    server = await startObservabilityServer({
      port: config.PROCESS_METRICS_PORT,
      host: config.METRICS_HOST,
      registry,
      health: combineProbes({ redis: redisProbe(redis), postgres: () => pool.query('SELECT 1') }),
    });
  } catch (err) {
    maintenance.stop();
    redis.disconnect();
    reader.disconnect();
    eventsReader.disconnect();
    await pool.end();
    throw err;
  }
  consumer.start();
  deviceState.start();
  log.info(
    { consumer: config.INSTANCE_ID, streams: keys.telemetry.length, metricsPort: server.port },
    'processor started',
  );

  let stopped: Promise<void> | undefined;
  return {
    metricsPort: server.port,
    registry,
    stop(reason?: string) {
      stopped ??= (async () => {
        log.info({ reason }, 'processor stopping');
        maintenance.stop();
        await Promise.all([consumer.stop(), deviceState.stop()]);
        await server.close();
        redis.disconnect();
        reader.disconnect();
        eventsReader.disconnect();
        await pool.end();
        log.info('processor stopped');
      })();
      return stopped;
    },
  };
}
