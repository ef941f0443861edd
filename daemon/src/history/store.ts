/**
 * The history's rows in PostgreSQL: reading a device's window (HistoryReader) and replacing what
 * a derived window owns, in the caller's transaction.
 *
 * Rows are upserted on their natural keys and only rows that changed are written; owned rows
 * missing from the new result are deleted. A re-derivation that finds nothing new therefore
 * writes nothing, and every surviving row keeps its id.
 */
import type { Knex } from 'knex';
import { RECORDED_EVENT_TYPES } from '../contract/index.js';
import { ownsEvent } from './derive.js';
import type { AfterEventsHook, DeviceKey, EventDeriver, HistoryExtensions, StoredEvent } from './hooks.js';
import type { HistoryReader, WindowStart } from './rederive.js';
import type { DetectionSettings } from './settings.js';
import { DAILY_SUMMARIES_TABLE, EVENTS_TABLE, type HistoryTable, STOPS_TABLE, TRIPS_TABLE } from './tables.js';
import type { DerivedEvent, DerivedWindow, HistoryPosition, LatLon, PriorTotals } from './types.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const ewkt = (p: LatLon | null) => (p === null ? null : `SRID=4326;POINT(${p.lon} ${p.lat})`);
const km = (dm: number) => dm / 10_000;

interface PositionDbRow {
  id: string | number;
  ms: number;
  lat: number | null;
  lon: number | null;
  speed: number | null;
  event_io_id: number;
  attributes: Record<string, unknown> | null;
  flags: string[] | null;
}

function toPosition(r: PositionDbRow): HistoryPosition {
  return {
    id: r.id,
    time: Number(r.ms),
    lat: r.lat ?? 0,
    lon: r.lon ?? 0,
    speed: r.speed ?? 0,
    eventIoId: r.event_io_id,
    attributes: r.attributes ?? {},
    flags: r.flags ?? [],
  };
}

const POSITION_COLUMNS = `id, (extract(epoch FROM fix_time) * 1000)::float8 AS ms, ST_Y(location) AS lat,
  ST_X(location) AS lon, speed, event_io_id, attributes, flags`;
/**
 * SQL for "the record's time can be trusted" (see isTrustedTime). Containment, not the `?|`
 * operator: knex reads every `?` of a raw query as a binding.
 */
const TRUSTED = `(flags IS NULL OR NOT (flags::jsonb @> '["future"]' OR flags::jsonb @> '["before_2000"]'))`;

export class SqlHistoryReader implements HistoryReader {
  constructor(
    private readonly db: Knex | Knex.Transaction,
    private readonly device: DeviceKey,
  ) {}

  async lastGoodFixBefore(time: number): Promise<number | null> {
    const r = await this.db.raw<{ rows: { ms: number | null }[] }>(
      `SELECT (extract(epoch FROM max(fix_time)) * 1000)::float8 AS ms FROM positions
        WHERE device = ? AND fix_time < ? AND flags IS NULL`,
      [this.device, iso(time)],
    );
    return r.rows[0]?.ms ?? null;
  }

  async stopStartEndedBy(time: number): Promise<number | null> {
    const r = await this.db.raw<{ rows: { ms: number }[] }>(
      `SELECT (extract(epoch FROM start_time) * 1000)::float8 AS ms FROM stops
        WHERE device = ? AND end_time IS NOT NULL AND end_time <= ? ORDER BY start_time DESC LIMIT 1`,
      [this.device, iso(time)],
    );
    return r.rows[0]?.ms ?? null;
  }

  async positionsFrom(dayFrom: number | null): Promise<HistoryPosition[]> {
    if (dayFrom === null) {
      const r = await this.db.raw<{ rows: PositionDbRow[] }>(
        `SELECT ${POSITION_COLUMNS} FROM positions WHERE device = ?`,
        [this.device],
      );
      return r.rows.map(toPosition);
    }
    const at = iso(dayFrom);
    const r = await this.db.raw<{ rows: PositionDbRow[] }>(
      `(SELECT ${POSITION_COLUMNS} FROM positions WHERE device = ? AND fix_time >= ?)
       UNION ALL
       (SELECT ${POSITION_COLUMNS} FROM positions WHERE device = ? AND fix_time < ? AND flags IS NULL
         ORDER BY fix_time DESC, event_io_id DESC LIMIT 1)
       UNION ALL
       (SELECT ${POSITION_COLUMNS} FROM positions WHERE device = ? AND fix_time < ? AND ${TRUSTED}
         ORDER BY fix_time DESC, event_io_id DESC LIMIT 1)`,
      [this.device, at, this.device, at, this.device, at],
    );
    // UNION ALL (json columns have no equality for UNION): the last good fix may also be the
    // last trusted record, so keep each row once.
    const seen = new Set<string>();
    return r.rows.filter((p) => !seen.has(String(p.id)) && seen.add(String(p.id))).map(toPosition);
  }

  async prior(start: WindowStart): Promise<PriorTotals> {
    if (start.from === null || start.dayKey === null || start.dayFrom === null) {
      return { distanceDm: 0, engineMs: 0, tripsBefore: 0, stopsBefore: 0 };
    }
    const r = await this.db.raw<{ rows: { dm: string | null; eng: string | null; trips: number; stops: number }[] }>(
      `SELECT (SELECT sum(distance_km) * 10000 FROM daily_summaries WHERE device = :d AND day < :day)::text AS dm,
              (SELECT sum(engine_s) * 1000 FROM daily_summaries WHERE device = :d AND day < :day)::text AS eng,
              (SELECT count(*) FROM trips WHERE device = :d AND start_time >= :df AND start_time < :f)::int AS trips,
              (SELECT count(*) FROM stops WHERE device = :d AND start_time >= :df AND start_time < :f)::int AS stops`,
      { d: this.device, day: start.dayKey, df: iso(start.dayFrom), f: iso(start.from) },
    );
    const row = r.rows[0]!;
    return {
      distanceDm: Math.round(Number(row.dm ?? 0)),
      engineMs: Math.round(Number(row.eng ?? 0)),
      tripsBefore: row.trips,
      stopsBefore: row.stops,
    };
  }
}

/** What a replacement changed, per table. */
export interface ReplaceCounts {
  inserted: number;
  updated: number;
  deleted: number;
}
export type WindowChanges = Record<'trips' | 'stops' | 'events' | 'daily_summaries', ReplaceCounts>;

interface TableSpec extends HistoryTable {
  /** Casts for columns whose JSON text is not read as the column's type by json_populate_recordset. */
  compareAsText?: string[];
}

const TRIPS: TableSpec = TRIPS_TABLE;
const STOPS: TableSpec = STOPS_TABLE;
const EVENTS: TableSpec = { ...EVENTS_TABLE, compareAsText: ['attributes'] };
const DAYS: TableSpec = DAILY_SUMMARIES_TABLE;

/**
 * Upserts `rows` (objects with every column of `spec` but device) and deletes the device's rows
 * matching `owned` (SQL on alias t) that are not among them. One statement.
 */
async function replaceOwned(
  trx: Knex.Transaction,
  spec: TableSpec,
  device: DeviceKey,
  rows: readonly Record<string, unknown>[],
  owned: { sql: string; bindings: unknown[] },
  returning = false,
): Promise<ReplaceCounts & { rows: Record<string, unknown>[] }> {
  const cols = [...spec.key, ...spec.values];
  const text = new Set(spec.compareAsText ?? []);
  const v = (alias: string, c: string) => (text.has(c) ? `${alias}.${c}::text` : `${alias}.${c}`);
  const keyMatch = spec.key.map((c) => `s.${c} = t.${c}`).join(' AND ');
  const sql = `
WITH s AS (
  SELECT ${cols.join(', ')} FROM json_populate_recordset(NULL::${spec.table}, ?::json)
), up AS (
  INSERT INTO ${spec.table} AS t (device, ${cols.join(', ')})
  SELECT ?, ${cols.join(', ')} FROM s
  ON CONFLICT (device, ${spec.key.join(', ')}) DO UPDATE SET ${spec.values.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}
  WHERE (${spec.values.map((c) => v('t', c)).join(', ')}) IS DISTINCT FROM (${spec.values.map((c) => v('EXCLUDED', c)).join(', ')})
  RETURNING t.id, (xmax = 0) AS inserted${returning ? `, ${cols.map((c) => `t.${c}`).join(', ')}` : ''}
), del AS (
  DELETE FROM ${spec.table} AS t
   WHERE t.device = ? AND (${owned.sql}) AND NOT EXISTS (SELECT 1 FROM s WHERE ${keyMatch})
  RETURNING 1
)
SELECT (SELECT count(*) FROM del)::int AS deleted, (SELECT coalesce(json_agg(up), '[]'::json) FROM up) AS up`;
  const res = await trx.raw<{ rows: { deleted: number; up: (Record<string, unknown> & { inserted: boolean })[] }[] }>(
    sql,
    [JSON.stringify(rows), device, device, ...owned.bindings],
  );
  const out = res.rows[0]!;
  const inserted = out.up.filter((r) => r.inserted);
  return {
    inserted: inserted.length,
    updated: out.up.length - inserted.length,
    deleted: out.deleted,
    rows: inserted,
  };
}

/**
 * Events owned by a window starting at `from` (mirrors ownsEvent). Recorded events (e.g. a
 * takeover written by ingestion) are never owned: derivation did not make them, so it must not
 * delete them.
 */
function ownedEventsSql(from: number | null): { sql: string; bindings: unknown[] } {
  const derivedOnly = {
    sql: `t.type NOT IN (${RECORDED_EVENT_TYPES.map(() => '?').join(', ')})`,
    bindings: [...RECORDED_EVENT_TYPES],
  };
  if (from === null) return derivedOnly;
  return {
    sql: `${derivedOnly.sql} AND (t.time > ? OR (t.time = ? AND t.type NOT IN ('trip_end', 'overspeed_end')))`,
    bindings: [...derivedOnly.bindings, iso(from), iso(from)],
  };
}
const fromSql = (column: string, from: number | string | null) =>
  from === null
    ? { sql: 'true', bindings: [] }
    : { sql: `t.${column} >= ?`, bindings: [typeof from === 'number' ? iso(from) : from] };

function eventRow(e: DerivedEvent) {
  return {
    type: e.type,
    time: iso(e.time),
    key: e.key,
    location: ewkt(e.location),
    attributes: e.attributes,
    position: e.position,
  };
}

export interface ReplaceInput {
  device: DeviceKey;
  start: WindowStart;
  result: DerivedWindow;
  positions: readonly HistoryPosition[];
  settings: DetectionSettings;
}

/** Runs the registered event derivers for a window (their events pass the same ownership rule). */
export async function extraEvents(
  trx: Knex.Transaction,
  derivers: readonly EventDeriver<unknown>[],
  input: ReplaceInput,
): Promise<DerivedEvent[]> {
  const out: DerivedEvent[] = [];
  for (const d of derivers) {
    const deriverInput = {
      device: input.device,
      from: input.start.from,
      positions: input.positions,
      settings: input.settings,
      derived: input.result,
    };
    const loaded = d.load ? await d.load(trx, deriverInput) : undefined;
    for (const e of d.derive(deriverInput, loaded)) if (ownsEvent(e, input.start.from)) out.push(e);
  }
  return out;
}

/** Replaces what the window owns, runs the after-events hooks, updates the accumulators. */
export async function replaceWindow(
  trx: Knex.Transaction,
  input: ReplaceInput,
  extensions: HistoryExtensions = {},
): Promise<WindowChanges> {
  const { device, start, result } = input;
  const trips = await replaceOwned(
    trx,
    TRIPS,
    device,
    result.trips.map((t) => ({
      start_time: iso(t.startTime),
      end_time: iso(t.endTime),
      start_location: ewkt(t.start),
      end_location: ewkt(t.end),
      distance_km: km(t.distanceDm),
      duration_s: t.durationS,
      driving_s: t.drivingS,
      idle_s: t.idleS,
      max_speed: t.maxSpeed,
      avg_speed: t.avgSpeed,
      start_odometer_km: Math.round(t.startOdometerKm * 10_000) / 10_000,
      end_odometer_km: Math.round(t.endOdometerKm * 10_000) / 10_000,
      in_progress: t.inProgress,
    })),
    fromSql('start_time', start.from),
  );
  const stops = await replaceOwned(
    trx,
    STOPS,
    device,
    result.stops.map((s) => ({
      start_time: iso(s.startTime),
      end_time: iso(s.endTime),
      location: ewkt(s.location),
      duration_s: s.durationS,
      engine_on_s: s.engineOnS,
    })),
    fromSql('start_time', start.from),
  );

  const extra = await extraEvents(trx, extensions.eventDerivers ?? [], input);
  const allEvents = extra.length > 0 ? dedupe([...result.events, ...extra]) : result.events;
  const events = await replaceOwned(trx, EVENTS, device, allEvents.map(eventRow), ownedEventsSql(start.from), true);
  const days = await replaceOwned(
    trx,
    DAYS,
    device,
    result.days.map((d) => ({
      day: d.day,
      distance_km: km(d.distanceDm),
      driving_s: d.drivingS,
      idle_s: d.idleS,
      engine_s: d.engineS,
      trips: d.trips,
      stops: d.stops,
      max_speed: d.maxSpeed,
      first_fix: iso(d.firstFix),
      last_fix: iso(d.lastFix),
    })),
    fromSql('day', start.dayKey),
  );

  await trx.raw(
    `UPDATE devices SET
       odometer_km = round((coalesce(?::float8, ?::float8) + coalesce(odometer_correction_km, 0))::numeric, 4),
       engine_hours = round((coalesce(?::float8, ?::float8) + coalesce(engine_hours_correction, 0))::numeric, 4)
     WHERE id = ?`,
    [
      result.totals.ioOdometerKm,
      km(result.totals.distanceDm),
      result.totals.ioEngineHours,
      result.totals.engineMs / 3_600_000,
      device,
    ],
  );

  const hooks: readonly AfterEventsHook[] = extensions.afterEvents ?? [];
  if (hooks.length > 0) {
    const stored = await trx.raw<{ rows: Record<string, unknown>[] }>(
      `SELECT t.id, t.type, (extract(epoch FROM t.time) * 1000)::float8 AS ms, t.key, ST_Y(t.location) AS lat,
              ST_X(t.location) AS lon, t.attributes, t.position
         FROM events t WHERE t.device = ? AND (${ownedEventsSql(start.from).sql}) ORDER BY t.time, t.type`,
      [device, ...ownedEventsSql(start.from).bindings],
    );
    const all = stored.rows.map((r) => storedEvent(device, r));
    const insertedIds = new Set(events.rows.map((r) => String(r.id)));
    const change = {
      device,
      from: start.from,
      settings: input.settings,
      events: all,
      inserted: all.filter((e) => insertedIds.has(String(e.id))),
      deleted: events.deleted,
    };
    for (const hook of hooks) await hook(trx, change);
  }

  const counts = (c: ReplaceCounts) => ({ inserted: c.inserted, updated: c.updated, deleted: c.deleted });
  return { trips: counts(trips), stops: counts(stops), events: counts(events), daily_summaries: counts(days) };
}

function storedEvent(device: DeviceKey, r: Record<string, unknown>): StoredEvent {
  return {
    id: r.id as number | string,
    device,
    type: String(r.type),
    time: Number(r.ms),
    key: String(r.key),
    location: r.lat === null || r.lon === null ? null : { lat: Number(r.lat), lon: Number(r.lon) },
    attributes: (r.attributes as Record<string, unknown> | null) ?? {},
    position: (r.position as number | string | null) ?? null,
  };
}

function dedupe(events: DerivedEvent[]): DerivedEvent[] {
  const seen = new Set<string>();
  return events.filter((e) => {
    const k = `${e.type}|${e.time}|${e.key}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Fleet defaults and each device's override, as stored. */
export async function loadSettingsRows(
  db: Knex | Knex.Transaction,
  device: DeviceKey,
): Promise<{ fleet: Record<string, unknown> | undefined; override: unknown }> {
  const [fleet, dev] = await Promise.all([
    db.raw<{ rows: Record<string, unknown>[] }>('SELECT * FROM fleet_settings ORDER BY id LIMIT 1'),
    db.raw<{ rows: { history_settings: unknown }[] }>('SELECT history_settings FROM devices WHERE id = ?', [device]),
  ]);
  return { fleet: fleet.rows[0], override: dev.rows[0]?.history_settings ?? null };
}
