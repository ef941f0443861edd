/**
 * The history worker: takes the devices the processor marked in `history_dirty`, and for each,
 * in one transaction, derives the invalidated window and replaces its rows.
 *
 * Serialised per device with a transaction-scoped advisory lock (any number of workers may run;
 * a device another worker holds is skipped and picked up on a later pass). The marks it handled
 * are deleted in the same transaction as the new rows, so a crash before commit leaves them for
 * the next pass, and marks committed meanwhile by the processor stay for the next pass too.
 */
import type { Knex } from 'knex';
import type { Logger } from '../observability/logger.js';
import { derivePositionsWindow } from './device.js';
import type { DeviceKey, HistoryExtensions } from './hooks.js';
import type { WindowChanges } from './store.js';

/** Advisory lock namespace of history derivation (the two-key form: namespace, device id). */
export const HISTORY_LOCK = 0x48495354; // "HIST"

export interface DeviceOutcome {
  device: DeviceKey;
  /** false: another worker holds the device, or nothing was left to do. */
  derived: boolean;
  changes?: WindowChanges;
  /** When the oldest mark it handled was written (epoch ms). */
  markedAt?: number;
}

/**
 * Derives one device if its lock is free. `earliest`: 'marks' = from its marks in history_dirty
 * (none left → nothing to do); a time = from then (the derive command; marks included);
 * null = its whole history.
 */
export async function deriveDevice(
  knex: Knex,
  device: DeviceKey,
  earliest: number | null | 'marks',
  extensions: HistoryExtensions,
  logger?: Logger,
): Promise<DeviceOutcome> {
  return knex.transaction(async (trx) => {
    const lock = await trx.raw<{ rows: { ok: boolean }[] }>('SELECT pg_try_advisory_xact_lock(?, ?) AS ok', [
      HISTORY_LOCK,
      device,
    ]);
    if (!lock.rows[0]?.ok) return { device, derived: false };
    const marks = await trx.raw<{ rows: { ms: number | null; marked: number | null }[] }>(
      `WITH d AS (DELETE FROM history_dirty WHERE device = ? RETURNING from_time, marked_at)
       SELECT (extract(epoch FROM min(from_time)) * 1000)::float8 AS ms,
              (extract(epoch FROM min(marked_at)) * 1000)::float8 AS marked FROM d`,
      [device],
    );
    const marked = marks.rows[0]?.ms ?? null;
    if (earliest === 'marks' && marked === null) return { device, derived: false };
    const from = earliest === 'marks' ? marked : earliest === null ? null : Math.min(earliest, marked ?? earliest);
    const changes = await derivePositionsWindow(trx, device, from, extensions, logger);
    return { device, derived: true, changes, markedAt: marks.rows[0]?.marked ?? undefined };
  });
}

/** Devices with marks, oldest mark first. */
export async function markedDevices(knex: Knex, limit: number): Promise<DeviceKey[]> {
  const r = await knex.raw<{ rows: { device: DeviceKey }[] }>(
    `SELECT device FROM history_dirty GROUP BY device ORDER BY min(id) LIMIT ?`,
    [limit],
  );
  return r.rows.map((x) => x.device);
}

/** Runs `fn` over `items` with at most `n` at a time. */
export async function inParallel<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(lanes);
}
