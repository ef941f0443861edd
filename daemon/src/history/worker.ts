/**
 * The history worker: takes the devices the processor marked in `history_dirty` and derives them
 * in batches, each batch in one transaction: the invalidated windows of all its devices are read,
 * derived and replaced with one statement per step (see device.ts).
 *
 * Serialised per device with a transaction-scoped advisory lock (any number of workers may run;
 * a device another worker or `derive --from` holds is left out of the batch and picked up on a
 * later pass). The marks a batch handled are deleted in the same transaction as the new rows, so a
 * crash before commit leaves them for the next pass, and marks committed meanwhile by the
 * processor stay for the next pass too.
 */
import type { Knex } from 'knex';
import type { Logger } from '../observability/logger.js';
import type { WindowCache } from './cache.js';
import { deriveWindows, type WindowRequest } from './device.js';
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
 * Derives the devices whose locks are free, in one transaction; one outcome per device, in order.
 * `earliest`: 'marks' = each from its marks in history_dirty (none left → nothing to do); a time =
 * from then (the derive command; marks included); null = their whole history.
 */
export async function deriveBatch(
  knex: Knex,
  devices: readonly DeviceKey[],
  earliest: number | null | 'marks',
  extensions: HistoryExtensions,
  logger?: Logger,
  cache?: WindowCache,
): Promise<DeviceOutcome[]> {
  const unique = [...new Set(devices)];
  if (unique.length === 0) return [];
  const result = await knex.transaction(async (trx) => {
    // A batch's statements are estimated as costly (many devices' rows) but run in milliseconds:
    // compiling them (JIT) took longer than running them.
    await trx.raw(`SELECT set_config('jit', 'off', true)`);
    // The locks first (a materialised CTE: the function has a side effect), then the marks of the
    // devices locked, as they stand at this statement. Marks have no foreign key (they are written
    // on the telemetry path): those of a device deleted since are deleted here and nothing derived.
    const claimed = await trx.raw<{ rows: { device: DeviceKey; ms: number | null; marked: number | null }[] }>(
      `WITH locked AS MATERIALIZED (
         SELECT u.device FROM unnest(?::int[]) AS u(device) WHERE pg_try_advisory_xact_lock(?, u.device)
       ), marks AS (
         DELETE FROM history_dirty h USING locked l WHERE h.device = l.device RETURNING h.device, h.from_time, h.marked_at
       )
       SELECT l.device, (extract(epoch FROM min(m.from_time)) * 1000)::float8 AS ms,
              (extract(epoch FROM min(m.marked_at)) * 1000)::float8 AS marked
         FROM locked l JOIN devices d ON d.id = l.device LEFT JOIN marks m ON m.device = l.device
        GROUP BY l.device ORDER BY l.device`,
      [unique, HISTORY_LOCK],
    );
    // Read with the locks held (a new snapshot): a derivation committed just before this one took
    // its locks is seen, which the first statement's snapshot may not.
    const tokens = new Map<DeviceKey, string>();
    if (cache && claimed.rows.length > 0) {
      const r = await trx.raw<{ rows: { device: DeviceKey; token: string }[] }>(
        'SELECT device, derived_in::text AS token FROM history_state WHERE device = ANY(?::int[])',
        [claimed.rows.map((x) => x.device)],
      );
      for (const x of r.rows) tokens.set(Number(x.device), x.token);
    }
    const requests: (WindowRequest & { markedAt?: number })[] = [];
    for (const row of claimed.rows) {
      const marked = row.ms ?? null;
      if (earliest === 'marks' && marked === null) continue;
      const from = earliest === 'marks' ? marked : earliest === null ? null : Math.min(earliest, marked ?? earliest);
      requests.push({
        device: Number(row.device),
        earliest: from,
        markedAt: row.marked ?? undefined,
        token: tokens.get(Number(row.device)) ?? null,
      });
    }
    if (requests.length === 0) return { outcomes: new Map<DeviceKey, DeviceOutcome>(), derived: undefined };
    const derived = await deriveWindows(trx, requests, extensions, logger, cache);
    // This derivation is now each device's last (see WindowCache).
    const state = await trx.raw<{ rows: { token: string }[] }>(
      `INSERT INTO history_state (device, derived_in) SELECT d, txid_current() FROM unnest(?::int[]) AS d
       ON CONFLICT (device) DO UPDATE SET derived_in = EXCLUDED.derived_in RETURNING derived_in::text AS token`,
      [requests.map((r) => r.device)],
    );
    const outcomes = new Map(
      requests.map((r): [DeviceKey, DeviceOutcome] => [
        r.device,
        { device: r.device, derived: true, changes: derived.changes.get(r.device), markedAt: r.markedAt },
      ]),
    );
    return { outcomes, derived: { windows: derived.windows, token: state.rows[0]!.token } };
  });
  // Committed: what these windows were derived from is each device's window as of this derivation.
  if (cache && result.derived) {
    for (const w of result.derived.windows) cache.store(w.device, result.derived.token, w.dayFrom, w.positions);
  }
  return devices.map((device) => result.outcomes.get(device) ?? { device, derived: false });
}

/** Derives one device if its lock is free (a batch of one; see deriveBatch). */
export async function deriveDevice(
  knex: Knex,
  device: DeviceKey,
  earliest: number | null | 'marks',
  extensions: HistoryExtensions,
  logger?: Logger,
): Promise<DeviceOutcome> {
  return (await deriveBatch(knex, [device], earliest, extensions, logger))[0]!;
}

/** Devices with marks, oldest mark first; only those in `only` / none of those in `except`. */
export async function markedDevices(
  knex: Knex,
  limit: number,
  filter: { only?: readonly DeviceKey[]; except?: readonly DeviceKey[] } = {},
): Promise<DeviceKey[]> {
  const r = await knex.raw<{ rows: { device: DeviceKey }[] }>(
    `SELECT device FROM history_dirty
      WHERE (?::int[] IS NULL OR device = ANY(?::int[])) AND (?::int[] IS NULL OR device <> ALL(?::int[]))
      GROUP BY device ORDER BY min(marked_at) LIMIT ?`,
    [filter.only ?? null, filter.only ?? null, filter.except ?? null, filter.except ?? null, limit],
  );
  return r.rows.map((x) => x.device);
}

/**
 * How far behind its telemetry the processor was in the marks it wrote over the last second (their
 * commit's start minus the oldest receive time of the rows marked), in ms; null: no such marks.
 */
export async function processorBehindMs(knex: Knex): Promise<number | null> {
  const r = await knex.raw<{ rows: { ms: number | null }[] }>(
    `SELECT (extract(epoch FROM max(marked_at - received_from)) * 1000)::float8 AS ms
       FROM history_dirty WHERE marked_at > now() - interval '1 second'`,
  );
  return r.rows[0]?.ms ?? null;
}

/** Runs `fn` over `items` with at most `n` at a time. */
export async function inParallel<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(lanes);
}

/** `items` cut into consecutive chunks of at most `size`. */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
