/**
 * Helpers for the processor's integration tests (real Redis, real PostgreSQL with the Directus schema).
 */

import type { Knex } from 'knex';
import { type Config, loadConfig } from '../../src/config.js';
import { encodeTelemetryEntry, type KeyLayout, type RedisTarget } from '../../src/contract/index.js';
import type { Ingestion, IngestionOptions } from '../../src/ingestion/main.js';
import { createLogger } from '../../src/observability/logger.js';
import type { AvlRecord } from '../../src/protocol/index.js';
import { CODEC_8E, encodeAvlFrame } from '../../src/protocol/index.js';
import { startTestIngestion } from '../ingestion/support.js';

export const silentLogger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

export interface DbConnection {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

/** Processor configuration for a test database and Redis prefix (metrics on a free port). */
export function processorEnv(
  connection: DbConnection,
  redisUrl: string,
  prefix: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    INSTANCE_ID: `proc-${Math.random().toString(36).slice(2, 10)}`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    REDIS: redisUrl,
    FLEET_REDIS_PREFIX: prefix,
    DB_HOST: connection.host,
    DB_PORT: String(connection.port),
    DB_DATABASE: connection.database,
    DB_USER: connection.user,
    DB_PASSWORD: connection.password ?? '',
    PROCESS_METRICS_PORT: '0',
    PROCESS_BLOCK_MS: '100',
    ...extra,
  };
}

export function processorConfig(
  connection: DbConnection,
  redisUrl: string,
  prefix: string,
  extra: Record<string, string> = {},
): Config {
  return loadConfig(processorEnv(connection, redisUrl, prefix, extra));
}

let imeiCounter = 0;
/** A fresh 15-digit IMEI per call. */
export function newImei(): string {
  imeiCounter++;
  return `35${String(Date.now() % 1e9).padStart(9, '0')}${String(imeiCounter).padStart(4, '0')}`.slice(0, 15);
}

export function record(over: Partial<AvlRecord> = {}): AvlRecord {
  return {
    timestamp: Date.now() - 60_000,
    priority: 0,
    longitude: 25.2797,
    latitude: 54.6872,
    altitude: 112,
    angle: 180,
    satellites: 11,
    speed: 42,
    eventIoId: 0,
    generationType: null,
    // ignition on, movement on, GSM signal 4, external voltage 24.079 V, total odometer 123456 m
    io: { ids: [239, 240, 21, 66, 16], values: [1, 1, 4, 24079, 123456] },
    ...over,
  };
}

/** A track of `n` good records one second apart, moving north slowly. */
export function track(n: number, start = Date.now() - 3_600_000, lat = 54.6872): AvlRecord[] {
  return Array.from({ length: n }, (_, i) =>
    record({ timestamp: start + i * 1000, latitude: lat + i * 0.0001, speed: 30 + (i % 10) }),
  );
}

/** The fields of a telemetry:avl entry carrying `records` as one Codec 8E TCP frame. */
export function telemetryFields(
  imei: string,
  records: AvlRecord[],
  opts: { receivedAt?: number; codec?: number } = {},
): (string | Buffer)[] {
  const codec = opts.codec ?? CODEC_8E;
  return encodeTelemetryEntry({
    imei,
    codec,
    transport: 'tcp',
    instance: 'test-ingest',
    receivedAt: opts.receivedAt ?? Date.now(),
    records: records.length,
    frame: encodeAvlFrame(codec, records),
  });
}

export { waitFor } from '../../../test/support/index.js';

/**
 * Ingestion as the pipeline tests run it, feeding the processor on the test's Redis prefix (and
 * cluster, when the test Redis is one): TCP only, no metrics port, no command sender, no log output.
 */
export function startPipelineIngestion(
  knex: Knex,
  redis: { url: string; prefix: string; target?: RedisTarget; layout?: KeyLayout },
  instanceId: string,
  options: Partial<IngestionOptions> = {},
): Promise<Ingestion> {
  return startTestIngestion(knex, {
    instanceId,
    redisUrl: redis.url,
    redisTarget: redis.target,
    keyLayout: redis.layout,
    redisPrefix: redis.prefix,
    metricsPort: null,
    commands: false,
    logger: silentLogger,
    ...options,
  });
}
