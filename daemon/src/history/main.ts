/**
 * `daemon derive`: the history worker role (also part of `all`), and `daemon derive --from …`,
 * a one-off recomputation of a range (after a settings change). Logic lives in worker.ts,
 * device.ts, store.ts and the pure derive.ts.
 */
import type { Knex } from 'knex';
import { Counter, Histogram } from 'prom-client';
import type { Config } from '../config.js';
import { connectDatabase } from '../db.js';
import type { Logger } from '../observability/logger.js';
import { createMetricsRegistry, startObservabilityServer } from '../observability/metrics.js';
import { sleep } from '../sleep.js';
import { WindowCache } from './cache.js';
import type { DeviceKey, HistoryExtensions } from './hooks.js';
import type { WindowChanges } from './store.js';
import { chunks, type DeviceOutcome, deriveBatch, inParallel, markedDevices, processorBehindMs } from './worker.js';

export interface RunningDerive {
  stop(reason?: string): Promise<void>;
  readonly metricsPort: number;
}

export interface DeriveOptions {
  extensions?: HistoryExtensions;
  /** Called after each derived device (benchmarks measure commit → derived row with it). */
  onDerived?: (outcome: DeviceOutcome) => void;
  /** Devices taken per pass. */
  passSize?: number;
}

export type PassDecision = { kind: 'derive' } | { kind: 'yield'; behindMs: number };

/**
 * Whether the main lane derives a pass now or yields the cores to the processor: it yields while
 * the processor's latest marks show it at least `behindLimitMs` behind its telemetry (working off a
 * backlog, where every core the worker takes slows acknowledging telemetry), but never longer than
 * `maxMs` in a row (`yieldingSince`: when the current run of yields began, or null).
 */
export function passDecision(
  behindMs: number | null,
  yieldingSince: number | null,
  now: number,
  limits: { behindLimitMs: number; maxMs: number },
): PassDecision {
  if (limits.behindLimitMs === 0 || behindMs === null || behindMs < limits.behindLimitMs) return { kind: 'derive' };
  if (yieldingSince !== null && now - yieldingSince >= limits.maxMs) return { kind: 'derive' };
  return { kind: 'yield', behindMs };
}

/** Devices of a batch that failed are retried one per transaction, so one bad device holds up no other. */
async function deriveIsolated(
  knex: Knex,
  batch: readonly DeviceKey[],
  extensions: HistoryExtensions,
  log: Logger,
  cache: WindowCache,
  onError: (device: DeviceKey | null, err: unknown) => void,
): Promise<DeviceOutcome[]> {
  try {
    return await deriveBatch(knex, batch, 'marks', extensions, log, cache);
  } catch (err) {
    if (batch.length === 1) {
      onError(batch[0]!, err);
      return [];
    }
    onError(null, err);
  }
  const out: DeviceOutcome[] = [];
  for (const device of batch) out.push(...(await deriveIsolated(knex, [device], extensions, log, cache, onError)));
  return out;
}

export async function runDerive(config: Config, logger: Logger, options: DeriveOptions = {}): Promise<RunningDerive> {
  const log = logger.child({ role: 'derive' });
  const concurrency = config.HISTORY_CONCURRENCY;
  const batchSize = config.HISTORY_BATCH_SIZE;
  const knex = connectDatabase(config, { min: 0, max: concurrency + 2 }, 'fleet-derive');
  const registry = createMetricsRegistry({ defaultLabels: { role: 'derive', instance_id: config.INSTANCE_ID } });
  const registers = [registry];
  const windows = new Counter({ name: 'fleet_history_windows_total', help: 'Device windows derived', registers });
  const failures = new Counter({ name: 'fleet_history_failures_total', help: 'Device windows that failed', registers });
  const lag = new Histogram({
    name: 'fleet_history_lag_seconds',
    help: 'Positions committed → their trips/events committed',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers,
  });
  const server = await startObservabilityServer({
    port: config.HISTORY_METRICS_PORT,
    registry,
    health: async () => {
      await knex.raw('SELECT 1');
      return { ok: true, checks: {} };
    },
  }).catch(async (err: unknown) => {
    await knex.destroy();
    throw err;
  });

  const abort = new AbortController();
  const extensions = options.extensions ?? {};
  const passSize = options.passSize ?? 1000;
  const cache = new WindowCache(config.HISTORY_CACHE_POSITIONS);
  const deriveCounted = async (batch: readonly DeviceKey[]): Promise<number> => {
    const outcomes = await deriveIsolated(knex, batch, extensions, log, cache, (device, err) => {
      // The marks stay (the transaction rolled back): the next pass retries these devices.
      if (device === null) log.warn({ devices: batch.length, err: String(err) }, 'history batch failed; one by one');
      else {
        failures.inc();
        log.error({ device, err: String(err) }, 'deriving history failed');
      }
    });
    let derived = 0;
    for (const outcome of outcomes) {
      if (!outcome.derived) continue;
      derived++;
      windows.inc();
      if (outcome.markedAt !== undefined) lag.observe((Date.now() - outcome.markedAt) / 1000);
      options.onDerived?.(outcome);
    }
    return derived;
  };
  // Devices the extensions wait for (alerting: those its rules watch) have a lane of their own: their
  // marks are derived while a batch of the others is under way, not after a pass over all of them.
  const urgentDevices = async (): Promise<readonly DeviceKey[]> =>
    (await extensions.urgentDevices?.(knex).catch((err: unknown) => {
      log.warn({ err: String(err) }, 'urgent devices unknown; none for now');
      return null;
    })) ?? [];
  const yields = new Counter({
    name: 'fleet_history_yields_total',
    help: 'Passes the worker left out while the processor was behind its telemetry',
    registers,
  });
  let yieldingSince: number | null = null;
  const lane = async (pass: () => Promise<number>) => {
    while (!abort.signal.aborted) {
      let derived = 0;
      try {
        derived = await pass();
      } catch (err) {
        log.error({ err: String(err) }, 'history pass failed; retrying');
      }
      // Nothing done (no marks, or only devices that failed or another worker holds): wait, so a
      // device that keeps failing is retried every poll instead of in a busy loop.
      if (derived === 0) await sleep(config.HISTORY_POLL_MS, abort.signal).catch(() => {});
    }
  };
  const loops = Promise.all([
    lane(async () => {
      // Straight to the batch, without first asking which of them have marks: the batch claims the
      // marks itself and skips devices that have none, so that query would only delay the batch.
      let derived = 0;
      for (const batch of chunks(await urgentDevices(), batchSize)) derived += await deriveCounted(batch);
      return derived;
    }),
    lane(async () => {
      const limits = { behindLimitMs: config.HISTORY_YIELD_BEHIND_MS, maxMs: config.HISTORY_YIELD_MAX_MS };
      const decision = passDecision(
        limits.behindLimitMs === 0 ? null : await processorBehindMs(knex),
        yieldingSince,
        Date.now(),
        limits,
      );
      if (decision.kind === 'yield') {
        if (yieldingSince === null) log.debug({ behindMs: decision.behindMs }, 'processor behind: history yields');
        yieldingSince ??= Date.now();
        yields.inc();
        return 0;
      }
      yieldingSince = null;
      const urgent = await urgentDevices();
      const devices = await markedDevices(knex, passSize, urgent.length > 0 ? { except: urgent } : {});
      let derived = 0;
      await inParallel(chunks(devices, batchSize), concurrency, async (batch) => {
        derived += await deriveCounted(batch);
      });
      return derived;
    }),
  ]);
  log.info({ concurrency, batchSize, metricsPort: server.port }, 'history worker started');

  let stopped: Promise<void> | undefined;
  return {
    metricsPort: server.port,
    stop(reason?: string) {
      stopped ??= (async () => {
        log.info({ reason }, 'history worker stopping');
        abort.abort();
        await loops;
        await server.close();
        await knex.destroy();
      })();
      return stopped;
    },
  };
}

export interface RangeOptions {
  from: number | null;
  to: number | null;
  /** devices.id or IMEI; all devices with positions in the range when absent. */
  device?: string;
}

/**
 * Recomputes every device with positions in [from, to] (or the one named) from `from` on: the
 * window runs to the device's latest record, since later rows (odometers, merged stops) depend on
 * earlier ones. Replaces what it covers; a second run changes nothing.
 */
export async function deriveRange(
  config: Config,
  range: RangeOptions,
  extensions: HistoryExtensions = {},
  logger?: Logger,
): Promise<{ device: DeviceKey; changes: WindowChanges | undefined }[]> {
  const knex = connectDatabase(config, { min: 0, max: 2 });
  try {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const r = await knex.raw<{ rows: { id: DeviceKey }[] }>(
      `SELECT d.id FROM devices d
        WHERE (?::text IS NULL OR d.id::text = ? OR d.imei = ?)
          AND EXISTS (SELECT 1 FROM positions p WHERE p.device = d.id
                        AND (?::timestamptz IS NULL OR p.fix_time >= ?) AND (?::timestamptz IS NULL OR p.fix_time <= ?))
        ORDER BY d.id`,
      [
        range.device ?? null,
        range.device ?? null,
        range.device ?? null,
        iso(range.from),
        iso(range.from),
        iso(range.to),
        iso(range.to),
      ],
    );
    const changes = new Map<DeviceKey, WindowChanges | undefined>();
    for (const batch of chunks(
      r.rows.map((x) => x.id),
      config.HISTORY_BATCH_SIZE,
    )) {
      // Wait for a running worker to finish a device rather than skip it.
      let todo = batch;
      while (todo.length > 0) {
        const outcomes = await deriveBatch(knex, todo, range.from, extensions, logger);
        for (const o of outcomes) if (o.derived) changes.set(o.device, o.changes);
        todo = outcomes.filter((o) => !o.derived).map((o) => o.device);
        if (todo.length > 0) await sleep(100);
      }
    }
    return r.rows.map(({ id }) => ({ device: id, changes: changes.get(id) }));
  } finally {
    await knex.destroy();
  }
}
