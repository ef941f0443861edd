/**
 * Daemon configuration from the environment (the same `.env` Directus reads: `DB_*`, `REDIS`,
 * `LOG_LEVEL` mean the same thing for both). Every value is validated once at start-up; a bad
 * value stops the process with a message naming the variable.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { OutboxSettings } from './alerts/outbox.js';
import { type RedisKeys, redisKeys } from './contract/keys.js';
import {
  COMMAND_REPLY_TIMEOUT_MS,
  DEFAULT_DEVICE_PORT,
  DEVICE_CACHE_TTL_MS,
  INGESTION_LIMITS,
} from './contract/limits.js';
import { keyLayoutFromEnv, MAX_TELEMETRY_PARTITIONS, type RedisTarget, redisTarget } from './contract/redis.js';
import { WRITE_METHODS } from './processor/writer.js';

const bool = z
  .union([z.boolean(), z.string()])
  .transform((v) => (typeof v === 'boolean' ? v : ['1', 'true', 'yes', 'on'].includes(v.toLowerCase())));
const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def);

export const ConfigSchema = z
  .object({
    // --- shared -----------------------------------------------------------------------------
    INSTANCE_ID: z
      .string()
      .regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only')
      .default(`${hostname()}-${process.pid}`),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Redis URL (same variable as Directus). */
    REDIS: z.string().default('redis://127.0.0.1:6379'),
    /**
     * Redis Cluster seed nodes (`host:port,host:port,…`): when set, the telemetry plane runs on the
     * cluster and REDIS is not used by the daemon (see contract/redis.ts).
     */
    REDIS_CLUSTER_NODES: z.string().default(''),
    /** Telemetry stream partitions by IMEI hash (default 1 on one Redis, 12 on a cluster; contract/keys.ts). */
    TELEMETRY_PARTITIONS: z.coerce.number().int().min(1).max(MAX_TELEMETRY_PARTITIONS).optional(),
    /**
     * Replicas that must hold a frame before ingestion acknowledges it (Redis WAIT). 0: the
     * master's answer (and its AOF) suffice. A cluster with replicas needs 1 for a master's
     * failover to lose no acknowledged frame (replication is otherwise asynchronous).
     */
    REDIS_WAIT_REPLICAS: int(0, 0),
    /** Prefix for every Redis key of the contract ('' in production; tests use their own). */
    FLEET_REDIS_PREFIX: z.string().default(''),
    DB_HOST: z.string().default('127.0.0.1'),
    DB_PORT: int(5432, 1),
    DB_DATABASE: z.string().default('fleet'),
    DB_USER: z.string().default('postgres'),
    DB_PASSWORD: z.string().default(''),

    // --- ingestion (defaults and why: contract/limits.ts) ------------------------------------
    INGEST_HOST: z.string().default('0.0.0.0'),
    /** TCP (and, when enabled, UDP) port for devices. */
    INGEST_PORT: int(DEFAULT_DEVICE_PORT),
    /** UDP has no login and a spoofable source: off unless a fleet needs it. */
    INGEST_UDP: bool.default(false),
    /** A TLS listener for devices (same protocol inside); needs INGEST_TLS_CERT and INGEST_TLS_KEY. */
    INGEST_TLS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
    INGEST_TLS_CERT: z.string().optional(),
    INGEST_TLS_KEY: z.string().optional(),
    /**
     * TCP load balancers (CIDR list, e.g. the compose network) whose connections start with a PROXY
     * protocol header naming the device's address (HAProxy `send-proxy-v2`); empty: none.
     */
    INGEST_PROXY_FROM: z.string().default(''),
    /** Address /metrics and /healthz listen on (both roles): loopback unless a scraper needs more. */
    METRICS_HOST: z.string().default('127.0.0.1'),
    INGEST_METRICS_PORT: int(9464),
    /** Largest accepted AVL/command data length (bytes); above it the connection is closed. */
    MAX_FRAME_BYTES: int(INGESTION_LIMITS.maxFrameBytes, 64),
    /** Connect → login answered (and the TLS handshake, on the TLS port). */
    HANDSHAKE_TIMEOUT_MS: int(INGESTION_LIMITS.handshakeTimeoutMs, 100),
    FRAME_TIMEOUT_MS: int(INGESTION_LIMITS.frameTimeoutMs, 100),
    IDLE_TIMEOUT_MS: int(INGESTION_LIMITS.idleTimeoutMs, 1000),
    MAX_CONNECTIONS: int(INGESTION_LIMITS.maxConnections, 1),
    MAX_CONNECTIONS_PER_IP: int(INGESTION_LIMITS.maxConnectionsPerIp, 1),
    MAX_BUFFERED_BYTES: int(INGESTION_LIMITS.maxBufferedBytes, 1024),
    /** `refuse`: unknown IMEIs get 0x00. `register`: they are created disabled, then refused. */
    UNKNOWN_DEVICES: z.enum(['refuse', 'register']).default('refuse'),
    DEVICE_CACHE_TTL_MS: int(DEVICE_CACHE_TTL_MS, 0),
    COMMAND_TIMEOUT_MS: int(COMMAND_REPLY_TIMEOUT_MS, 100),

    // --- processor ---------------------------------------------------------------------------
    PROCESS_METRICS_PORT: int(9465),
    PROCESS_BATCH_SIZE: int(500, 1),
    PROCESS_BLOCK_MS: int(1000, 1),
    /**
     * How a batch's rows reach PostgreSQL (processor/writer.ts): array parameters + unnest, COPY
     * into a staging table, or COPY straight into positions (falling back to the staging table
     * for a batch holding a row already stored).
     */
    PROCESS_WRITE_METHOD: z.enum(WRITE_METHODS).default('direct'),
    /** Pending entries idle longer than this are claimed from (presumably dead) consumers. */
    PROCESS_CLAIM_IDLE_MS: int(30_000, 100),
    /**
     * An entry whose handling failed unexpectedly this many times (counted by the processor per
     * entry; restarts, claims and database outages do not count) goes to the dead-letter stream.
     */
    PROCESS_MAX_FAILURES: int(3, 1),
    /** `telemetry:dead` keeps at most this many entries (the oldest are dropped). */
    PROCESS_DEAD_MAXLEN: int(100_000, 1),
    /**
     * positions is partitioned by month: keep this many full months besides the current one and
     * drop older partitions (hourly check); unset: keep everything. Trips, stops, summaries and
     * events are not affected.
     */
    POSITIONS_RETENTION_MONTHS: z.preprocess(
      (v) => (v === '' ? undefined : v),
      z.coerce.number().int().min(1).optional(),
    ),
    /** Monthly positions partitions created ahead of the current month. */
    POSITIONS_PARTITIONS_AHEAD: int(3, 1),
    /** Fix times further in the future than this are flagged. */
    FUTURE_MARGIN_HOURS: int(24, 0),
    /** A jump implying more than this speed from the previous fix is flagged. */
    MAX_PLAUSIBLE_SPEED_KMH: int(500, 1),

    // --- geofences and alerts (the extension's in-app / e-mail sender reads the ALERT_* ones too) ---
    /** A fix must be this far inside (outside) a geofence's boundary to count as inside (outside). */
    GEOFENCE_MARGIN_M: int(15, 0),
    /** A change of side needs this many consecutive clear fixes... */
    GEOFENCE_DWELL_FIXES: int(2, 1),
    /** ...spanning at least this many seconds. */
    GEOFENCE_DWELL_S: int(0, 0),
    /** Events older than this when evaluated are recorded as stale alerts and not notified. */
    ALERT_STALE_AFTER_S: int(15 * 60, 0),
    /** Time zone of alert rule schedules for the periodic checks (derivation uses the device's zone). */
    ALERT_TIME_ZONE: z.string().default('UTC'),
    /** The derivation re-reads alert rules and geofences at most this often: a change applies within it. */
    ALERT_RULES_TTL_MS: int(1000, 0),
    /** Outbox retry policy (timeouts, attempts, backoff, per-target cap): see alerts/outbox.ts. */
    ...OutboxSettings.shape,
    /** Webhooks in flight at once. */
    ALERT_CONCURRENCY: int(64, 1),
    /** Safety-net poll of the outbox; commits wake the sender at once through LISTEN/NOTIFY. */
    ALERT_POLL_MS: int(1000, 10),
    /** offline / no_fix / min-duration checks. */
    ALERT_SWEEP_INTERVAL_MS: int(30_000, 100),
    // --- history (trips, stops, events) --------------------------------------------------------
    /** false: the processor records no work for the history worker and `derive` runs only on demand. */
    HISTORY_ENABLED: bool.default(true),
    /** How often the history worker looks for new rows when idle. */
    HISTORY_POLL_MS: int(200, 10),
    /** CPU niceness the `derive` role gives itself (0–19): on shared cores the processor, which
     * acknowledges telemetry, wins; derivation catches up in the gaps (its lag is a metric). */
    HISTORY_NICE: z.coerce.number().int().min(0).max(19).default(10),
    /** While the processor's latest marks show it this far behind its telemetry (a backlog), the
     * worker yields the cores to it (0: never); the devices alert rules watch are derived anyway. */
    HISTORY_YIELD_BEHIND_MS: int(2000, 0),
    /** The longest the worker yields in a row before it derives a pass regardless. */
    HISTORY_YIELD_MAX_MS: int(5000, 0),
    /** Batches of devices derived concurrently by one worker (each on its own connection). */
    HISTORY_CONCURRENCY: int(1, 1),
    /** Devices derived together in one transaction (one statement per step for all of them). */
    HISTORY_BATCH_SIZE: int(200, 1),
    /** Window positions a worker keeps in memory so a pass reads only new ones (0: none). */
    HISTORY_CACHE_POSITIONS: int(500_000, 0),
    HISTORY_METRICS_PORT: int(9466),
  })
  .superRefine((c, ctx) => {
    if (c.INGEST_TLS_PORT === undefined) return;
    for (const name of ['INGEST_TLS_CERT', 'INGEST_TLS_KEY'] as const) {
      if (!c[name]) ctx.addIssue({ code: 'custom', path: [name], message: 'required when INGEST_TLS_PORT is set' });
    }
  });

export type Config = z.infer<typeof ConfigSchema>;

/** The Redis the configuration names: the cluster when REDIS_CLUSTER_NODES is set, else REDIS. */
export function redisTargetOf(config: Pick<Config, 'REDIS' | 'REDIS_CLUSTER_NODES'>): RedisTarget {
  return redisTarget(config, config.REDIS);
}

/** The contract's key names for the configuration (prefix, cluster hash tags, telemetry partitions). */
export function redisKeysOf(
  config: Pick<Config, 'FLEET_REDIS_PREFIX' | 'REDIS_CLUSTER_NODES' | 'TELEMETRY_PARTITIONS'>,
): RedisKeys {
  return redisKeys(config.FLEET_REDIS_PREFIX, keyLayoutFromEnv(config));
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the configuration; throws ConfigError listing every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const defined = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = ConfigSchema.safeParse(defined);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** For command-line entries: the configuration, or exit code 2 once the reason it is invalid is on stderr. */
export function loadConfigOrExitCode(env: Record<string, string | undefined> = process.env): Config | 2 {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
