/**
 * The row writer: one SQL statement per batch, set-based.
 *
 * The positions insert and the devices update travel as data-modifying CTEs of a single statement,
 * so a batch is one round trip and one implicit transaction: either every row of the batch and the
 * device state it implies are committed, or none are. Arrays are passed as parameters and expanded
 * with `unnest` (no per-row round trip, no SQL string building with values).
 *
 * Idempotency lives in the table: the primary key of positions is derived from the natural key
 * (device, fix_time, event_io_id) by position_id() (directus/sql/positions-partitions.sql; it is
 * also the partition key of the time-partitioned table), and the insert says ON CONFLICT DO
 * NOTHING, so a batch written twice (crash between commit and XACK, a device resending, a replay)
 * adds nothing the second time.
 *
 * History: each batch also records which devices got new rows and their time span in
 * `history_dirty` (a third CTE, so the same transaction): the history worker derives trips and
 * events from that durable signal. Only rows actually inserted count, so a replay marks nothing.
 *
 * "Latest" only moves forward: the update changes `last_fix_at`/`last_location`/... only when the
 * batch's best good fix is newer than the stored one, and `last_seen_at` only grows. Both rules are
 * evaluated against the row as locked by the UPDATE, so concurrent processors cannot rewind it.
 *
 * Three ways to hand the rows over (`PositionWriter` method): `unnest` (the rows as array parameters
 * of the one statement), `copy` (the rows COPYed in binary format, copy-binary.ts, into a
 * temporary staging table of the connection, then the same statement reads them from there; BEGIN … COMMIT around both, so
 * the batch is still one transaction), or `direct`: optimistic, the rows COPYed straight into
 * positions in its own column types with the key computed here (position-id.ts), then one
 * statement updating the devices and marking history from the batch itself, since every row was
 * inserted; a primary-key violation (a replay, a resent frame, a duplicate within the batch) rolls
 * that back and the batch goes the `copy` way, whose ON CONFLICT sorts out which rows are new. So
 * the same rows, marks and device state are committed either way, and PostgreSQL skips the stage,
 * the INSERT … SELECT and the speculative insertion for batches of new rows (the usual case).
 * bench:process measures the three side by side.
 */
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { copyBinary, copyPositions, idEncoder, POSITION_COLUMNS } from './copy-binary.js';
import { sqlState } from './errors.js';
import type { Fix } from './flags.js';
import type { PositionRow } from './rows.js';

export type DeviceId = number | string;

export interface KnownDevice {
  id: DeviceId;
  imei: string;
  /** The stored latest good fix (reference for the jump rule), if any. */
  lastFix: Fix | null;
}

export interface WriteResult {
  /** Rows actually inserted. */
  inserted: number;
  /** Rows skipped because the natural key already existed. */
  conflicts: number;
  /** `direct` only: the direct COPY met a row already stored and the batch went the `copy` way. */
  fellBack?: boolean;
}

/** Allowed SQL types for devices.id (read from the catalogue, then spliced into casts). */
const ID_TYPES = new Set(['integer', 'bigint', 'smallint', 'uuid', 'text', 'character varying']);

/** How the batch's rows reach PostgreSQL (see the header). */
export const WRITE_METHODS = ['unnest', 'copy', 'direct'] as const;
export type WriteMethod = (typeof WRITE_METHODS)[number];

/** The staging table of the `copy` method: per connection, emptied at each commit. */
const STAGE = 'fleet_positions_stage';
const STAGE_COLUMNS =
  'device, fix_ms, recv_ms, lon, lat, altitude, heading, speed, satellites, priority, event_io_id, io, attributes, flags';

/** Loads copyBinary's output into the staging table. */
export const STAGE_COPY = `COPY ${STAGE} (${STAGE_COLUMNS}) FROM STDIN (FORMAT binary)`;
/** Loads copyPositions' output straight into positions (the `direct` method). */
export const POSITIONS_COPY = `COPY positions (${POSITION_COLUMNS}) FROM STDIN (FORMAT binary)`;
/** SQLSTATE of a unique violation: on positions, a row whose key is already stored. */
const UNIQUE_VIOLATION = '23505';

export function stageTableStatement(idType: string): string {
  if (!ID_TYPES.has(idType)) throw new Error(`unsupported devices.id type: ${idType}`);
  return `CREATE TEMP TABLE IF NOT EXISTS ${STAGE} (device ${idType}, fix_ms bigint, recv_ms bigint, lon float8,
    lat float8, altitude int, heading int, speed int, satellites int, priority int, event_io_id int, io text,
    attributes text, flags text) ON COMMIT DELETE ROWS`;
}

/**
 * Marks the devices and time span of the rows `ins` inserted for the history worker (see header),
 * with their oldest receive time: how far behind the processor is shows in its latest marks.
 */
const MARK_HISTORY = `, dirty AS (
  INSERT INTO history_dirty (device, from_time, to_time, received_from)
  SELECT device, min(fix_time), max(fix_time), min(received_at) FROM ins GROUP BY device
  RETURNING 1
)`;

const ms = (col: string) => `('epoch'::timestamptz + ${col} * interval '1 millisecond')`;

/**
 * The forward-only device update ($1-$8, see deviceParams), a CTE. Evaluated against the target
 * row itself (never a joined copy of devices): under concurrent processors the UPDATE re-checks it
 * on the latest row version, so a newer fix is never rewound.
 */
function updateDevices(idType: string): string {
  const fresh = '(v.fix_at IS NOT NULL AND (d.last_fix_at IS NULL OR d.last_fix_at < v.fix_at))';
  return `upd AS (
  UPDATE devices AS d SET
    last_seen_at = GREATEST(d.last_seen_at, v.seen_at),
    last_fix_at = CASE WHEN ${fresh} THEN v.fix_at ELSE d.last_fix_at END,
    last_location = CASE WHEN ${fresh} THEN ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326) ELSE d.last_location END,
    last_speed = CASE WHEN ${fresh} THEN v.speed ELSE d.last_speed END,
    last_heading = CASE WHEN ${fresh} THEN v.heading ELSE d.last_heading END,
    last_attributes = CASE WHEN ${fresh} THEN v.attributes::json ELSE d.last_attributes END
  FROM (
    SELECT x.id, x.lon, x.lat, x.speed, x.heading, x.attributes,
           ${ms('x.seen_ms')} AS seen_at, ${ms('x.fix_ms')} AS fix_at
    FROM unnest($1::${idType}[], $2::bigint[], $3::bigint[], $4::float8[], $5::float8[], $6::int[], $7::int[],
                $8::text[])
      AS x(id, seen_ms, fix_ms, lon, lat, speed, heading, attributes)
  ) AS v
  WHERE d.id = v.id AND (${fresh} OR d.last_seen_at IS NULL OR d.last_seen_at < v.seen_at)
  RETURNING 1
)`;
}

export function writeStatement(
  idType: string,
  method: Exclude<WriteMethod, 'direct'> = 'unnest',
  markHistory = true,
): string {
  if (!ID_TYPES.has(idType)) throw new Error(`unsupported devices.id type: ${idType}`);
  // The device update's parameters come first so both methods number them the same.
  const rowsSource =
    method === 'copy'
      ? `${STAGE} AS u`
      : `unnest($9::${idType}[], $10::bigint[], $11::bigint[], $12::float8[], $13::float8[], $14::int[], $15::int[],
              $16::int[], $17::int[], $18::int[], $19::int[], $20::text[], $21::text[], $22::text[])
    AS u(${STAGE_COLUMNS})`;
  return `
WITH ins AS (
  INSERT INTO positions
    (id, device, fix_time, received_at, location, altitude, heading, speed, satellites, priority, event_io_id, io, attributes, flags)
  SELECT position_id(u.device, u.fix_ms * 1000, u.event_io_id), u.device, ${ms('u.fix_ms')}, ${ms('u.recv_ms')}, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326),
         u.altitude, u.heading, u.speed, u.satellites, u.priority, u.event_io_id,
         u.io::json, u.attributes::json, u.flags::json
  FROM ${rowsSource}
  ON CONFLICT (id) DO NOTHING
  RETURNING device, fix_time, received_at
)${markHistory ? MARK_HISTORY : ''}, ${updateDevices(idType)}
SELECT (SELECT count(*) FROM ins)::int AS inserted`;
}

/**
 * The `direct` method's statement after its COPY: the device update, and the history marks
 * ($9-$12, see markParams) computed from the batch, which the COPY inserted whole.
 */
export function devicesStatement(markHistory = true): string {
  const marks = `dirty AS (
  INSERT INTO history_dirty (device, from_time, to_time, received_from)
  SELECT m.device, ${ms('m.from_ms')}, ${ms('m.to_ms')}, ${ms('m.recv_ms')}
  FROM unnest($9::integer[], $10::bigint[], $11::bigint[], $12::bigint[]) AS m(device, from_ms, to_ms, recv_ms)
  RETURNING 1
), `;
  return `WITH ${markHistory ? marks : ''}${updateDevices('integer')}
SELECT 1`;
}

/** Per device of the batch: its rows' earliest and latest fix time and earliest receive time. */
export function markParams(rows: readonly PositionRow[], ids: ReadonlyMap<string, DeviceId>): unknown[] {
  const spans = new Map<DeviceId, [number, number, number]>();
  for (const r of rows) {
    const id = deviceId(ids, r.imei);
    const s = spans.get(id);
    if (!s) spans.set(id, [r.fixTime, r.fixTime, r.receivedAt]);
    else {
      if (r.fixTime < s[0]) s[0] = r.fixTime;
      if (r.fixTime > s[1]) s[1] = r.fixTime;
      if (r.receivedAt < s[2]) s[2] = r.receivedAt;
    }
  }
  const devices = [...spans.keys()];
  return [
    devices,
    devices.map((d) => spans.get(d)![0]),
    devices.map((d) => spans.get(d)![1]),
    devices.map((d) => spans.get(d)![2]),
  ];
}

/**
 * Statement parameters for a batch. `latest` holds each device's best good row in the batch,
 * `seen` each device's latest receive time; `ids` maps IMEI → devices.id for every row. The
 * `copy` and `direct` methods pass only the device update's ($1-$8); the rows go through COPY.
 */
export function writeParams(
  rows: readonly PositionRow[],
  latest: ReadonlyMap<string, PositionRow>,
  seen: ReadonlyMap<string, number>,
  ids: ReadonlyMap<string, DeviceId>,
  method: WriteMethod = 'unnest',
): unknown[] {
  const devices = deviceParams(latest, seen, ids);
  return method === 'unnest' ? [...devices, ...rowParams(rows, ids)] : devices;
}

function deviceId(ids: ReadonlyMap<string, DeviceId>, imei: string): DeviceId {
  const id = ids.get(imei);
  if (id === undefined) throw new Error(`no device id for IMEI ${imei}`);
  return id;
}

function rowParams(rows: readonly PositionRow[], ids: ReadonlyMap<string, DeviceId>): unknown[] {
  const n = rows.length;
  const device: DeviceId[] = new Array(n);
  const fix: number[] = new Array(n);
  const recv: number[] = new Array(n);
  const lon: number[] = new Array(n);
  const lat: number[] = new Array(n);
  const alt: number[] = new Array(n);
  const heading: number[] = new Array(n);
  const speed: number[] = new Array(n);
  const sats: number[] = new Array(n);
  const prio: number[] = new Array(n);
  const event: number[] = new Array(n);
  const io: string[] = new Array(n);
  const attrs: string[] = new Array(n);
  const flags: (string | null)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    device[i] = deviceId(ids, r.imei);
    fix[i] = r.fixTime;
    recv[i] = r.receivedAt;
    lon[i] = r.longitude;
    lat[i] = r.latitude;
    alt[i] = r.altitude;
    heading[i] = r.heading;
    speed[i] = r.speed;
    sats[i] = r.satellites;
    prio[i] = r.priority;
    event[i] = r.eventIoId;
    io[i] = r.io;
    attrs[i] = r.attributes;
    flags[i] = r.flags.length > 0 ? JSON.stringify(r.flags) : null;
  }
  return [device, fix, recv, lon, lat, alt, heading, speed, sats, prio, event, io, attrs, flags];
}

function deviceParams(
  latest: ReadonlyMap<string, PositionRow>,
  seen: ReadonlyMap<string, number>,
  ids: ReadonlyMap<string, DeviceId>,
): unknown[] {
  // Device updates sorted by id: concurrent processors then lock device rows in the same order.
  const devs = [...seen.keys()]
    .map((imei) => ({ imei, id: ids.get(imei) }))
    .filter((d): d is { imei: string; id: DeviceId } => d.id !== undefined)
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const m = devs.length;
  const dId: DeviceId[] = new Array(m);
  const dSeen: number[] = new Array(m);
  const dFix: (number | null)[] = new Array(m);
  const dLon: (number | null)[] = new Array(m);
  const dLat: (number | null)[] = new Array(m);
  const dSpeed: (number | null)[] = new Array(m);
  const dHeading: (number | null)[] = new Array(m);
  const dAttrs: (string | null)[] = new Array(m);
  for (let i = 0; i < m; i++) {
    const { imei, id } = devs[i]!;
    const best = latest.get(imei);
    dId[i] = id;
    dSeen[i] = seen.get(imei)!;
    dFix[i] = best ? best.fixTime : null;
    dLon[i] = best ? best.longitude : null;
    dLat[i] = best ? best.latitude : null;
    dSpeed[i] = best ? best.speed : null;
    dHeading[i] = best ? best.heading : null;
    dAttrs[i] = best ? best.attributes : null;
  }
  return [dId, dSeen, dFix, dLon, dLat, dSpeed, dHeading, dAttrs];
}

export class PositionWriter {
  private idType: string | undefined;
  /** Connections whose staging table exists (temporary tables live as long as the connection). */
  private readonly stagedOn = new WeakSet<pg.PoolClient>();
  /** Connections that could not even roll back: not given back to the pool. */
  private readonly unusable = new WeakSet<pg.PoolClient>();

  /** `markHistory` false: no history_dirty rows (a deployment without the history worker). */
  constructor(
    private readonly pool: pg.Pool,
    readonly method: WriteMethod = 'unnest',
    private readonly markHistory = true,
  ) {}

  /** devices.id's SQL type, read once from the catalogue (Directus may use integer or uuid keys). */
  private async deviceIdType(): Promise<string> {
    if (this.idType) return this.idType;
    const res = await this.pool.query<{ t: string }>(
      `SELECT format_type(atttypid, NULL) AS t FROM pg_attribute
        WHERE attrelid = 'devices'::regclass AND attname = 'id' AND NOT attisdropped`,
    );
    const t = res.rows[0]?.t;
    if (!t) throw new Error('table devices has no id column');
    this.idType = t;
    return t;
  }

  async lookupDevices(imeis: readonly string[]): Promise<KnownDevice[]> {
    if (imeis.length === 0) return [];
    const res = await this.pool.query<{
      id: DeviceId;
      imei: string;
      fix_ms: number | null;
      lat: number | null;
      lon: number | null;
    }>(
      `SELECT id, imei, (extract(epoch FROM last_fix_at) * 1000)::float8 AS fix_ms,
              ST_Y(last_location) AS lat, ST_X(last_location) AS lon
         FROM devices WHERE imei = ANY($1::text[])`,
      [imeis],
    );
    return res.rows.map((r) => ({
      id: r.id,
      imei: r.imei,
      lastFix:
        r.fix_ms !== null && r.lat !== null && r.lon !== null
          ? { time: r.fix_ms, latitude: r.lat, longitude: r.lon }
          : null,
    }));
  }

  async write(
    rows: readonly PositionRow[],
    latest: ReadonlyMap<string, PositionRow>,
    seen: ReadonlyMap<string, number>,
    ids: ReadonlyMap<string, DeviceId>,
  ): Promise<WriteResult> {
    if (seen.size === 0) return { inserted: 0, conflicts: 0 };
    const idType = await this.deviceIdType();
    if (this.method === 'unnest') {
      const res = await this.pool.query<{ inserted: number }>(
        writeStatement(idType, 'unnest', this.markHistory),
        writeParams(rows, latest, seen, ids, 'unnest'),
      );
      return counted(rows, res.rows[0]?.inserted ?? 0);
    }
    const params = writeParams(rows, latest, seen, ids, 'copy');
    const staged = async (client: pg.PoolClient) =>
      counted(
        rows,
        await this.staged(
          client,
          idType,
          copyBinary(rows, (r) => deviceId(ids, r.imei), idEncoder(idType)),
          params,
        ),
      );
    // position_id() takes an integer device id: other id types always go the staged way.
    if (this.method === 'copy' || idType !== 'integer') return this.withClient(staged);
    const data = copyPositions(rows, (r) => Number(deviceId(ids, r.imei)));
    const deviceParams = this.markHistory ? [...params, ...markParams(rows, ids)] : params;
    return this.withClient(async (client) => {
      try {
        await this.transaction(client, async () => {
          await pipeline([data], client.query(copyFrom(POSITIONS_COPY)));
          await client.query(devicesStatement(this.markHistory), deviceParams);
        });
        return counted(rows, rows.length);
      } catch (err) {
        if (sqlState(err) !== UNIQUE_VIOLATION) throw err;
      }
      return { ...(await staged(client)), fellBack: true };
    });
  }

  /**
   * Rows through the staging table: COPY, then the INSERT … SELECT … ON CONFLICT statement.
   * Returns how many rows were new.
   */
  private async staged(client: pg.PoolClient, idType: string, data: Buffer, params: unknown[]): Promise<number> {
    if (!this.stagedOn.has(client)) {
      await client.query(stageTableStatement(idType));
      this.stagedOn.add(client);
    }
    const res = await this.transaction(client, async () => {
      await pipeline([data], client.query(copyFrom(STAGE_COPY)));
      return client.query<{ inserted: number }>(writeStatement(idType, 'copy', this.markHistory), params);
    });
    return res.rows[0]?.inserted ?? 0;
  }

  /** BEGIN; `body`; COMMIT, or ROLLBACK and the error. */
  private async transaction<T>(client: pg.PoolClient, body: () => Promise<T>): Promise<T> {
    await client.query('BEGIN');
    try {
      const res = await body();
      await client.query('COMMIT');
      return res;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => this.unusable.add(client));
      throw err;
    }
  }

  /** `use` on a connection of the pool's own, given back (or discarded when broken) after. */
  private async withClient<T>(use: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    // A checked-out client has no error listener of the pool's: a connection reset (PostgreSQL
    // restarting) would otherwise be an uncaught exception. The query in flight fails anyway.
    const onError = (err: Error) => {
      broken = err;
    };
    client.on('error', onError);
    try {
      return await use(client);
    } finally {
      client.off('error', onError);
      if (this.unusable.has(client)) broken ??= new Error('the connection could not roll back');
      client.release(broken);
    }
  }
}

function counted(rows: readonly PositionRow[], inserted: number): WriteResult {
  return { inserted, conflicts: rows.length - inserted };
}
