/**
 * Upkeep of the time-partitioned positions table (the SQL lives with the schema, in
 * directus/sql/positions-partitions.sql): the current month's partition and the next ones exist
 * before any row needs them, and, with a retention set, monthly partitions past it are detached
 * and dropped. Only positions: trips, stops, summaries and events are tables of their own and stay.
 *
 * Every processor runs it (an advisory lock inside the SQL serialises them); a write for a month
 * with no partition yet still succeeds, into the default partition, and moves into its month's
 * partition when that is created.
 */
import type pg from 'pg';

export interface PartitionUpkeep {
  /** Months after the current one whose partitions are created ahead. */
  monthsAhead: number;
  /** Full months kept besides the current one; null: keep everything. */
  retentionMonths: number | null;
}

export interface PartitionUpkeepResult {
  created: number;
  dropped: string[];
}

export async function maintainPartitions(
  db: pg.Pool | pg.PoolClient,
  o: PartitionUpkeep,
): Promise<PartitionUpkeepResult> {
  const created = await db.query<{ n: number }>('SELECT positions_ensure_partitions($1) AS n', [o.monthsAhead]);
  let dropped: string[] = [];
  if (o.retentionMonths !== null) {
    const r = await db.query<{ names: string[] }>('SELECT positions_drop_partitions($1) AS names', [o.retentionMonths]);
    dropped = r.rows[0]?.names ?? [];
  }
  return { created: created.rows[0]?.n ?? 0, dropped };
}
