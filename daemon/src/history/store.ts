/**
 * The history's rows in PostgreSQL: reading the windows of a batch of devices and replacing what
 * each derived window owns, in the caller's transaction, with one statement per step for the whole
 * batch (SqlHistoryReader: the same reads for one device, as the HistoryReader of rederive.ts).
 *
 * Rows are upserted on their natural keys and only rows that changed are written; owned rows
 * missing from the new result are deleted. A re-derivation that finds nothing new therefore
 * writes nothing, and every surviving row keeps its id.
 */
import type { Knex } from 'knex';
import { RECORDED_EVENT_TYPES } from '../contract/index.js';
import { ownsEvent } from './derive.js';
import type {
  AfterEventsHook,
  DeriverInput,
  DeviceKey,
  EventDeriver,
  EventsChange,
  HistoryExtensions,
  StoredEvent,
} from './hooks.js';
import type { HistoryReader, WindowStart } from './rederive.js';
import type { DetectionSettings } from './settings.js';
import { DAILY_SUMMARIES_TABLE, EVENTS_TABLE, type HistoryTable, STOPS_TABLE, TRIPS_TABLE } from './tables.js';
import {
  type DerivedDay,
  type DerivedEvent,
  type DerivedStop,
  type DerivedTrip,
  type DerivedWindow,
  type HistoryPosition,
  type LatLon,
  NO_PRIOR,
  type PriorTotals,
} from './types.js';

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
    return (await windowPositions(this.db, [{ device: this.device, dayFrom }])).get(this.device) ?? [];
  }

  async prior(start: WindowStart): Promise<PriorTotals> {
    return (await priorTotals(this.db, [{ device: this.device, start }])).get(this.device) ?? NO_PRIOR;
  }
}

type Db = Knex | Knex.Transaction;

/**
 * The reset point of each device's window for a change at or after `earliest` (see windowFor):
 * the start of its latest stored stop that ended at or before its last good fix before
 * `earliest`; null = its whole history. One statement for all devices.
 */
export async function resetPoints(
  db: Db,
  items: readonly { device: DeviceKey; earliest: number }[],
): Promise<Map<DeviceKey, number | null>> {
  const out = new Map<DeviceKey, number | null>();
  if (items.length === 0) return out;
  const r = await db.raw<{ rows: { device: DeviceKey; ms: number | null }[] }>(
    `SELECT u.device, (extract(epoch FROM s.start_time) * 1000)::float8 AS ms
       FROM unnest(?::int[], ?::timestamptz[]) AS u(device, earliest)
       LEFT JOIN LATERAL (SELECT max(p.fix_time) AS t FROM positions p
                           WHERE p.device = u.device AND p.fix_time < u.earliest AND p.flags IS NULL) g ON true
       LEFT JOIN LATERAL (SELECT st.start_time FROM stops st
                           WHERE st.device = u.device AND st.end_time IS NOT NULL AND st.end_time <= g.t
                           ORDER BY st.start_time DESC LIMIT 1) s ON true`,
    [items.map((i) => i.device), items.map((i) => iso(i.earliest))],
  );
  for (const row of r.rows) out.set(Number(row.device), row.ms ?? null);
  return out;
}

/**
 * Each device's records at or after its `dayFrom` (all when null) plus its last good fix and last
 * trusted record before it (see HistoryReader.positionsFrom). One statement for all devices.
 */
export async function windowPositions(
  db: Db,
  items: readonly { device: DeviceKey; dayFrom: number | null }[],
): Promise<Map<DeviceKey, HistoryPosition[]>> {
  const out = new Map<DeviceKey, HistoryPosition[]>(items.map((i) => [i.device, []]));
  if (items.length === 0) return out;
  const r = await db.raw<{ rows: (PositionDbRow & { device: DeviceKey })[] }>(
    `SELECT u.device, p.* FROM unnest(?::int[], ?::timestamptz[]) AS u(device, day_from)
       CROSS JOIN LATERAL (
         (SELECT ${POSITION_COLUMNS} FROM positions
           WHERE device = u.device AND fix_time >= coalesce(u.day_from, '-infinity'))
         UNION ALL
         (SELECT ${POSITION_COLUMNS} FROM positions WHERE device = u.device AND fix_time < u.day_from AND flags IS NULL
           ORDER BY fix_time DESC, event_io_id DESC LIMIT 1)
         UNION ALL
         (SELECT ${POSITION_COLUMNS} FROM positions WHERE device = u.device AND fix_time < u.day_from AND ${TRUSTED}
           ORDER BY fix_time DESC, event_io_id DESC LIMIT 1)
       ) p`,
    [items.map((i) => i.device), items.map((i) => iso(i.dayFrom))],
  );
  // UNION ALL (json columns have no equality for UNION): the last good fix may also be the
  // last trusted record, so keep each row once. Only those two rows (before day_from) can repeat.
  const dayFrom = new Map(items.map((i) => [i.device, i.dayFrom]));
  const seen = new Set<string>();
  for (const row of r.rows) {
    const device = Number(row.device);
    const from = dayFrom.get(device);
    if (from !== null && from !== undefined && Number(row.ms) < from) {
      const key = `${device}:${row.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
    }
    out.get(device)?.push(toPosition(row));
  }
  return out;
}

/** What each window depends on but does not contain (PriorTotals). One statement for all devices. */
export async function priorTotals(
  db: Db,
  items: readonly { device: DeviceKey; start: WindowStart }[],
): Promise<Map<DeviceKey, PriorTotals>> {
  const out = new Map<DeviceKey, PriorTotals>(items.map((i) => [i.device, NO_PRIOR]));
  const bounded = items.filter((i) => i.start.from !== null && i.start.dayKey !== null && i.start.dayFrom !== null);
  if (bounded.length === 0) return out;
  const r = await db.raw<{
    rows: { device: DeviceKey; dm: string | null; eng: string | null; trips: number; stops: number }[];
  }>(
    `SELECT u.device,
            (SELECT sum(distance_km) * 10000 FROM daily_summaries WHERE device = u.device AND day < u.day)::text AS dm,
            (SELECT sum(engine_s) * 1000 FROM daily_summaries WHERE device = u.device AND day < u.day)::text AS eng,
            (SELECT count(*) FROM trips WHERE device = u.device AND start_time >= u.day_from AND start_time < u.f)::int AS trips,
            (SELECT count(*) FROM stops WHERE device = u.device AND start_time >= u.day_from AND start_time < u.f)::int AS stops
       FROM unnest(?::int[], ?::date[], ?::timestamptz[], ?::timestamptz[]) AS u(device, day, day_from, f)`,
    [
      bounded.map((i) => i.device),
      bounded.map((i) => i.start.dayKey),
      bounded.map((i) => iso(i.start.dayFrom)),
      bounded.map((i) => iso(i.start.from)),
    ],
  );
  for (const row of r.rows) {
    out.set(Number(row.device), {
      distanceDm: Math.round(Number(row.dm ?? 0)),
      engineMs: Math.round(Number(row.eng ?? 0)),
      tripsBefore: row.trips,
      stopsBefore: row.stops,
    });
  }
  return out;
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
  /** SQL type of a window's bound (`w.bound`: where the rows it owns start; null = all). */
  boundType: 'timestamptz' | 'date';
  /** The rows a window owns (SQL on alias t and the window w). */
  owned: string;
}

const fromBound = (column: string) => `(w.bound IS NULL OR t.${column} >= w.bound)`;
const TRIPS: TableSpec = { ...TRIPS_TABLE, boundType: 'timestamptz', owned: fromBound('start_time') };
const STOPS: TableSpec = { ...STOPS_TABLE, boundType: 'timestamptz', owned: fromBound('start_time') };
/**
 * Events owned by a window starting at `from` (mirrors ownsEvent). Recorded events (e.g. a
 * takeover written by ingestion) are never owned: derivation did not make them, so it must not
 * delete them. (The types are the contract's constants, spliced as literals.)
 */
const OWNED_EVENTS = `t.type NOT IN (${RECORDED_EVENT_TYPES.map((t) => `'${t.replace(/'/g, "''")}'`).join(', ')})
  AND (w.bound IS NULL OR t.time > w.bound OR (t.time = w.bound AND t.type NOT IN ('trip_end', 'overspeed_end')))`;
const EVENTS: TableSpec = {
  ...EVENTS_TABLE,
  compareAsText: ['attributes'],
  boundType: 'timestamptz',
  owned: OWNED_EVENTS,
};
const DAYS: TableSpec = { ...DAILY_SUMMARIES_TABLE, boundType: 'date', owned: fromBound('day') };

/** A device's window bound for one table (see TableSpec.owned). */
interface Bound {
  device: DeviceKey;
  bound: string | null;
}

interface BatchReplaced {
  counts: Map<DeviceKey, ReplaceCounts>;
  /** Ids of the rows inserted (new identities). */
  insertedIds: Set<string>;
}

/**
 * Upserts `rows` (objects with `device` and every column of `spec`) and deletes each window's owned
 * rows that are not among them, for every device of the batch. One statement.
 */
async function replaceOwned(
  trx: Knex.Transaction,
  spec: TableSpec,
  rows: readonly Record<string, unknown>[],
  windows: readonly Bound[],
): Promise<BatchReplaced> {
  const cols = [...spec.key, ...spec.values];
  const text = new Set(spec.compareAsText ?? []);
  const v = (alias: string, c: string) => (text.has(c) ? `${alias}.${c}::text` : `${alias}.${c}`);
  const keyMatch = ['device', ...spec.key].map((c) => `s.${c} = t.${c}`).join(' AND ');
  const sql = `
WITH s AS (
  SELECT device, ${cols.join(', ')} FROM json_populate_recordset(NULL::${spec.table}, ?::json)
), w AS (
  SELECT * FROM unnest(?::int[], ?::${spec.boundType}[]) AS w(device, bound)
), changed AS (
  -- Only new or changed rows reach the upsert: ON CONFLICT locks the row it meets even when its
  -- WHERE then skips it (a WAL record and a dirtied page per unchanged row, every pass).
  SELECT s.device, ${cols.map((c) => `s.${c}`).join(', ')} FROM s
    LEFT JOIN ${spec.table} AS t ON ${keyMatch}
   WHERE t.id IS NULL
      OR (${spec.values.map((c) => v('t', c)).join(', ')}) IS DISTINCT FROM (${spec.values.map((c) => v('s', c)).join(', ')})
), up AS (
  INSERT INTO ${spec.table} AS t (device, ${cols.join(', ')})
  SELECT device, ${cols.join(', ')} FROM changed
  ON CONFLICT (device, ${spec.key.join(', ')}) DO UPDATE SET ${spec.values.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}
  WHERE (${spec.values.map((c) => v('t', c)).join(', ')}) IS DISTINCT FROM (${spec.values.map((c) => v('EXCLUDED', c)).join(', ')})
  RETURNING t.id, t.device, (xmax = 0) AS inserted
), del AS (
  DELETE FROM ${spec.table} AS t USING w
   WHERE t.device = w.device AND (${spec.owned}) AND NOT EXISTS (SELECT 1 FROM s WHERE ${keyMatch})
  RETURNING t.device
)
SELECT (SELECT coalesce(json_agg(d), '[]'::json) FROM (SELECT device, count(*)::int AS n FROM del GROUP BY device) d) AS deleted,
       (SELECT coalesce(json_agg(up), '[]'::json) FROM up) AS up`;
  const res = await trx.raw<{
    rows: {
      deleted: { device: DeviceKey; n: number }[];
      up: { id: number | string; device: DeviceKey; inserted: boolean }[];
    }[];
  }>(sql, [JSON.stringify(rows), windows.map((w) => w.device), windows.map((w) => w.bound)]);
  const out = res.rows[0]!;
  const counts = new Map<DeviceKey, ReplaceCounts>(
    windows.map((w) => [w.device, { inserted: 0, updated: 0, deleted: 0 }]),
  );
  const insertedIds = new Set<string>();
  for (const r of out.up) {
    const c = counts.get(Number(r.device))!;
    if (r.inserted) {
      c.inserted++;
      insertedIds.add(String(r.id));
    } else c.updated++;
  }
  for (const d of out.deleted) counts.get(Number(d.device))!.deleted = d.n;
  return { counts, insertedIds };
}

export interface ReplaceInput {
  device: DeviceKey;
  start: WindowStart;
  result: DerivedWindow;
  positions: readonly HistoryPosition[];
  settings: DetectionSettings;
}

const deriverInput = (input: ReplaceInput): DeriverInput => ({
  device: input.device,
  from: input.start.from,
  positions: input.positions,
  settings: input.settings,
  derived: input.result,
});

/**
 * Runs the registered event derivers for a batch of windows: each deriver loads for all of them
 * at once; its events pass the same ownership rule. One list per window, same order.
 */
export async function extraEvents(
  trx: Knex.Transaction,
  derivers: readonly EventDeriver<unknown>[],
  inputs: readonly ReplaceInput[],
): Promise<DerivedEvent[][]> {
  const out = inputs.map((): DerivedEvent[] => []);
  const deriverInputs = inputs.map(deriverInput);
  for (const d of derivers) {
    const loaded = d.load ? await d.load(trx, deriverInputs) : deriverInputs.map(() => undefined);
    deriverInputs.forEach((input, i) => {
      for (const e of d.derive(input, loaded[i])) if (ownsEvent(e, input.from)) out[i]!.push(e);
    });
  }
  return out;
}

const tripRow = (device: DeviceKey, t: DerivedTrip) => ({
  device,
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
});
const stopRow = (device: DeviceKey, s: DerivedStop) => ({
  device,
  start_time: iso(s.startTime),
  end_time: iso(s.endTime),
  location: ewkt(s.location),
  duration_s: s.durationS,
  engine_on_s: s.engineOnS,
});
const eventRow = (device: DeviceKey, e: DerivedEvent) => ({
  device,
  type: e.type,
  time: iso(e.time),
  key: e.key,
  location: ewkt(e.location),
  attributes: e.attributes,
  position: e.position,
});
const dayRow = (device: DeviceKey, d: DerivedDay) => ({
  device,
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
});

/** Replaces what one window owns (a batch of one; see replaceWindows). */
export async function replaceWindow(
  trx: Knex.Transaction,
  input: ReplaceInput,
  extensions: HistoryExtensions = {},
): Promise<WindowChanges> {
  return (await replaceWindows(trx, [input], extensions)).get(input.device)!;
}

/**
 * Replaces what each window of a batch owns (one statement per table for all of them), runs the
 * after-events hooks once for the batch, then updates the accumulators. Devices must be distinct.
 */
export async function replaceWindows(
  trx: Knex.Transaction,
  inputs: readonly ReplaceInput[],
  extensions: HistoryExtensions = {},
): Promise<Map<DeviceKey, WindowChanges>> {
  const out = new Map<DeviceKey, WindowChanges>();
  if (inputs.length === 0) return out;
  const fromBounds = inputs.map((i) => ({ device: i.device, bound: iso(i.start.from) }));
  const trips = await replaceOwned(
    trx,
    TRIPS,
    inputs.flatMap((i) => i.result.trips.map((t) => tripRow(i.device, t))),
    fromBounds,
  );
  const stops = await replaceOwned(
    trx,
    STOPS,
    inputs.flatMap((i) => i.result.stops.map((s) => stopRow(i.device, s))),
    fromBounds,
  );
  const extra = await extraEvents(trx, extensions.eventDerivers ?? [], inputs);
  const events = await replaceOwned(
    trx,
    EVENTS,
    inputs.flatMap((i, n) => {
      const all = extra[n]!.length > 0 ? dedupe([...i.result.events, ...extra[n]!]) : i.result.events;
      return all.map((e) => eventRow(i.device, e));
    }),
    fromBounds,
  );
  const days = await replaceOwned(
    trx,
    DAYS,
    inputs.flatMap((i) => i.result.days.map((d) => dayRow(i.device, d))),
    inputs.map((i) => ({ device: i.device, bound: i.start.dayKey })),
  );

  const hooks: readonly AfterEventsHook[] = extensions.afterEvents ?? [];
  if (hooks.length > 0) {
    const stored = await trx.raw<{ rows: Record<string, unknown>[] }>(
      `SELECT t.device, t.id, t.type, (extract(epoch FROM t.time) * 1000)::float8 AS ms, t.key, ST_Y(t.location) AS lat,
              ST_X(t.location) AS lon, t.attributes, t.position
         FROM unnest(?::int[], ?::timestamptz[]) AS w(device, bound) JOIN events t ON t.device = w.device
        WHERE ${OWNED_EVENTS} ORDER BY t.device, t.time, t.type`,
      [fromBounds.map((b) => b.device), fromBounds.map((b) => b.bound)],
    );
    const byDevice = new Map<DeviceKey, StoredEvent[]>(inputs.map((i) => [i.device, []]));
    for (const r of stored.rows) byDevice.get(Number(r.device))!.push(storedEvent(r));
    const changes: EventsChange[] = inputs.map((i) => {
      const all = byDevice.get(i.device)!;
      return {
        device: i.device,
        from: i.start.from,
        settings: i.settings,
        events: all,
        inserted: all.filter((e) => events.insertedIds.has(String(e.id))),
        deleted: events.counts.get(i.device)!.deleted,
      };
    });
    for (const hook of hooks) await hook(trx, changes);
  }

  // Last: the processor updates these rows too, so they are locked only for the end of the transaction.
  await updateAccumulators(trx, inputs);

  const counts = (c: Map<DeviceKey, ReplaceCounts>, d: DeviceKey) => c.get(d)!;
  for (const { device } of inputs) {
    out.set(device, {
      trips: counts(trips.counts, device),
      stops: counts(stops.counts, device),
      events: counts(events.counts, device),
      daily_summaries: counts(days.counts, device),
    });
  }
  return out;
}

/** How long the accumulator update waits for a devices row before it backs off and tries again. */
const ACCUMULATOR_LOCK_TIMEOUT = '200ms';
const ACCUMULATOR_ATTEMPTS = 50;

/**
 * devices.odometer_km / engine_hours for every window, written only where they change. The
 * processor updates many devices rows in one statement in no set order, and so does this: two such
 * statements could deadlock. So this one waits at most ACCUMULATOR_LOCK_TIMEOUT for a row, then
 * rolls back to its savepoint (releasing the rows it took) and tries again: the processor's short
 * statement is never the one PostgreSQL aborts.
 */
async function updateAccumulators(trx: Knex.Transaction, inputs: readonly ReplaceInput[]): Promise<void> {
  const t = inputs.map((i) => i.result.totals);
  const params = [
    inputs.map((i) => i.device),
    t.map((x) => x.ioOdometerKm),
    t.map((x) => km(x.distanceDm)),
    t.map((x) => x.ioEngineHours),
    t.map((x) => x.engineMs / 3_600_000),
  ];
  // The corrections are read from the row being updated (its latest version when it waited).
  const odometer = 'round((coalesce(x.io_km, x.km) + coalesce(d.odometer_correction_km, 0))::numeric, 4)';
  const engine = 'round((coalesce(x.io_h, x.h) + coalesce(d.engine_hours_correction, 0))::numeric, 4)';
  const set = await trx.raw<{ rows: { before: string }[] }>(
    `WITH b AS MATERIALIZED (SELECT current_setting('lock_timeout') AS before)
     SELECT b.before, set_config('lock_timeout', ?, true) FROM b`,
    [ACCUMULATOR_LOCK_TIMEOUT],
  );
  for (let attempt = 1; ; attempt++) {
    await trx.raw('SAVEPOINT accumulators');
    try {
      await trx.raw(
        `UPDATE devices AS d SET odometer_km = ${odometer}, engine_hours = ${engine}
           FROM unnest(?::int[], ?::float8[], ?::float8[], ?::float8[], ?::float8[]) AS x(id, io_km, km, io_h, h)
          WHERE d.id = x.id AND (d.odometer_km, d.engine_hours) IS DISTINCT FROM (${odometer}, ${engine})`,
        params,
      );
      break;
    } catch (err) {
      await trx.raw('ROLLBACK TO SAVEPOINT accumulators');
      if ((err as { code?: string }).code !== '55P03' || attempt >= ACCUMULATOR_ATTEMPTS) throw err;
    }
  }
  await trx.raw('RELEASE SAVEPOINT accumulators');
  await trx.raw(`SELECT set_config('lock_timeout', ?, true)`, [set.rows[0]!.before]);
}

function storedEvent(r: Record<string, unknown>): StoredEvent {
  return {
    id: r.id as number | string,
    device: Number(r.device),
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

/** Fleet defaults and each device's override, as stored. One statement. */
export async function loadSettingsRows(
  db: Db,
  devices: readonly DeviceKey[],
): Promise<{ fleet: Record<string, unknown> | undefined; overrides: Map<DeviceKey, unknown> }> {
  const r = await db.raw<{
    rows: { fleet: Record<string, unknown> | null; device: DeviceKey | null; override: unknown }[];
  }>(
    `SELECT (SELECT row_to_json(f) FROM (SELECT * FROM fleet_settings ORDER BY id LIMIT 1) f) AS fleet,
            d.id AS device, d.history_settings AS override
       FROM (SELECT 1) one LEFT JOIN devices d ON d.id = ANY(?::int[])`,
    [devices],
  );
  const overrides = new Map<DeviceKey, unknown>();
  for (const row of r.rows) if (row.device !== null) overrides.set(Number(row.device), row.override ?? null);
  return { fleet: r.rows[0]?.fleet ?? undefined, overrides };
}
