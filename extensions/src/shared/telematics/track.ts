/**
 * One device's track between two times as GeoJSON, simplified by PostGIS for the map's zoom.
 *
 * Size is bounded whatever the range: at most `maxInputPoints` positions (sampled evenly by row
 * number) enter the lines, so the output never exceeds that many vertices before simplification,
 * and at most `maxStops` stops (the longest) are returned. Positions flagged as bad data (non-empty
 * `flags`) are left out, as on the live map.
 */
import type { Feature, Geometry, Point } from 'geojson';
import type { Knex } from 'knex';
import { z } from 'zod';
import { numberParam } from './query.js';

export interface TrackQuery {
  device: string | number;
  fromMs: number;
  toMs: number;
  /** Map zoom (0-22): sets the simplification tolerance to about one screen pixel. */
  zoom?: number;
  /** Positions more than this apart in time start a new LineString (device off, no coverage). */
  gapSeconds?: number;
  /** At or below this speed (km/h) the device counts as standing still. */
  stopSpeedKmh?: number;
  /** A still period at least this long is a stop. */
  minStopSeconds?: number;
  maxInputPoints?: number;
  maxStops?: number;
  /** Also return up to this many timed positions (evenly sampled) for replay and hover; 0 = none. */
  samples?: number;
}

/** One timed position of a track: `[epoch ms, lng, lat, speed km/h | null, heading | null]`. */
export type TrackSample = [number, number, number, number | null, number | null];

export const TRACK_DEFAULTS = {
  gapSeconds: 600,
  stopSpeedKmh: 2,
  minStopSeconds: 180,
  maxInputPoints: 10_000,
  maxStops: 200,
  samples: 0,
} as const;

/** Most timed positions one track request may ask for. */
export const MAX_TRACK_SAMPLES = 5000;

/**
 * Longest range one request may ask for (a quarter): longer is an error rather than a long scan.
 * With sampling the answer stays small; this bounds the rows PostgreSQL reads.
 */
export const MAX_TRACK_RANGE_MS = 92 * 24 * 3600 * 1000;
/** The track's queries are cancelled by PostgreSQL after this long (a 503 with a reason). */
export const TRACK_STATEMENT_TIMEOUT_MS = 10_000;

export class TrackQueryError extends Error {
  override name = 'TrackQueryError';
}

/** Degrees per screen pixel at this zoom for 512-px tiles (what maplibre uses), at the equator. */
export function toleranceForZoom(zoom: number): number {
  const z = Math.min(22, Math.max(0, zoom));
  return 360 / (512 * 2 ** z);
}

/** Latest time accepted (the year 9999): past it, Dates and timestamptz stop agreeing. */
const MAX_TIME_MS = Date.UTC(9999, 11, 31);

/** A time as ISO text or epoch ms, within 1970..9999. */
const time = (name: string) =>
  z
    .string({ error: `${name} is required` })
    .min(1, `${name} is required`)
    .transform((v, ctx) => {
      const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
      if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIME_MS) {
        ctx.addIssue({ code: 'custom', message: `${name} is not a time between 1970 and 9999: ${v.slice(0, 40)}` });
        return z.NEVER;
      }
      return ms;
    });

/** A primary key of `devices` (PostgreSQL integer). */
export const DeviceKey = z
  .string()
  .regex(/^\d{1,10}$/, 'invalid device id')
  .refine((v) => Number(v) <= 2_147_483_647, 'invalid device id')
  .transform(Number);

const TrackParams = z
  .object({
    from: time('from'),
    to: time('to'),
    zoom: numberParam(0, 24, 'zoom must be 0-24', undefined),
    samples: numberParam(0, MAX_TRACK_SAMPLES, `samples must be an integer 0-${MAX_TRACK_SAMPLES}`, undefined).refine(
      (v) => v === undefined || Number.isInteger(v),
      `samples must be an integer 0-${MAX_TRACK_SAMPLES}`,
    ),
  })
  .refine((q) => q.to > q.from, 'to must be after from')
  .refine((q) => q.to - q.from <= MAX_TRACK_RANGE_MS, 'range longer than 92 days');

/** The first problem of a failed parse as one sentence. */
export function firstIssue(error: z.ZodError): string {
  return error.issues[0]?.message ?? 'invalid query';
}

/** Reads `from`, `to` (ISO or ms) and `zoom` from a query string; rejects what would be nonsense. */
export function parseTrackQuery(device: string, q: Record<string, unknown>): TrackQuery {
  const key = DeviceKey.safeParse(device);
  if (!key.success) throw new TrackQueryError(firstIssue(key.error));
  const p = TrackParams.safeParse(q);
  if (!p.success) throw new TrackQueryError(firstIssue(p.error));
  return { device: key.data, fromMs: p.data.from, toMs: p.data.to, zoom: p.data.zoom, samples: p.data.samples };
}

export interface TrackResult {
  type: 'FeatureCollection';
  features: Feature[];
  /** What was drawn: positions in range, whether they were sampled, the tolerance used. */
  meta: { positions: number; sampled: boolean; tolerance: number; segments: number; stops: number };
  /** Timed positions in time order, when asked for (`samples`): replay and hover read these. */
  samples?: TrackSample[];
}

/**
 * One device between two times, inclusive (parameters: device, from, to, from, to). The id
 * condition says the same as the fix_time one: positions' primary key starts with the fix time
 * (position_id() in directus/sql/positions-partitions.sql) and is the partition key, so it lets
 * PostgreSQL skip every monthly partition outside the range.
 */
const DEVICE_RANGE = `p.device = ? AND p.fix_time >= ? AND p.fix_time <= ?
  AND p.id >= position_id_at(?) AND p.id < position_id_at(?::timestamptz + interval '1 microsecond')`;
const GOOD_DATA = `(p.flags IS NULL OR jsonb_typeof(p.flags::jsonb) <> 'array' OR jsonb_array_length(p.flags::jsonb) = 0)`;

export class TrackTimeoutError extends Error {
  override name = 'TrackTimeoutError';
}

/** `trackOf` in a read-only transaction whose statements PostgreSQL cancels after `timeoutMs`. */
export async function deviceTrack(
  db: Knex,
  query: TrackQuery,
  timeoutMs: number = TRACK_STATEMENT_TIMEOUT_MS,
): Promise<TrackResult> {
  try {
    return await db.transaction(
      async (trx) => {
        await trx.raw(`SELECT set_config('statement_timeout', ?, true)`, [String(Math.max(1, Math.round(timeoutMs)))]);
        return trackOf(trx, query);
      },
      { readOnly: true },
    );
  } catch (err) {
    if ((err as { code?: string }).code === '57014') {
      throw new TrackTimeoutError(`the track took longer than ${timeoutMs} ms to read; ask for a shorter range`);
    }
    throw err;
  }
}

async function trackOf(db: Knex, query: TrackQuery): Promise<TrackResult> {
  const o = { ...TRACK_DEFAULTS, ...stripUndefined(query) };
  const from = new Date(query.fromMs);
  const to = new Date(query.toMs);
  const tolerance = query.zoom === undefined ? 0 : toleranceForZoom(query.zoom);

  const lines = await db.raw(
    `
    WITH pts AS (
      SELECT p.fix_time, p.location,
             row_number() OVER (ORDER BY p.fix_time) AS rn,
             count(*) OVER () AS n
      FROM positions p
      WHERE ${DEVICE_RANGE} AND p.location IS NOT NULL AND ${GOOD_DATA}
    ),
    sampled AS (
      SELECT fix_time, location, rn, n FROM pts
      WHERE n <= ? OR (rn - 1) % ceil(n::numeric / ?)::bigint = 0 OR rn = n
    ),
    gaps AS (
      SELECT *, CASE WHEN fix_time - lag(fix_time) OVER (ORDER BY fix_time) > make_interval(secs => ?)
                     THEN 1 ELSE 0 END AS brk
      FROM sampled
    ),
    segs AS (SELECT *, sum(brk) OVER (ORDER BY fix_time) AS seg FROM gaps)
    SELECT seg::int,
           min(n)::int AS n,
           count(*)::int AS points,
           floor(extract(epoch FROM min(fix_time)) * 1000)::bigint AS t0,
           floor(extract(epoch FROM max(fix_time)) * 1000)::bigint AS t1,
           ST_AsGeoJSON(ST_SimplifyPreserveTopology(ST_MakeLine(location ORDER BY fix_time), ?), 6) AS geom,
           ST_AsGeoJSON((array_agg(location ORDER BY fix_time ASC))[1], 6) AS first,
           ST_AsGeoJSON((array_agg(location ORDER BY fix_time DESC))[1], 6) AS last
    FROM segs GROUP BY seg ORDER BY seg`,
    [o.device, from, to, from, to, o.maxInputPoints, o.maxInputPoints, o.gapSeconds, tolerance],
  );

  const stops = await db.raw(
    `
    WITH p AS (
      SELECT p.fix_time, p.location, coalesce(p.speed, 0) <= ? AS still,
             lead(p.fix_time) OVER (ORDER BY p.fix_time) AS next_t
      FROM positions p
      WHERE ${DEVICE_RANGE} AND p.location IS NOT NULL AND ${GOOD_DATA}
    ),
    islands AS (
      SELECT *, row_number() OVER (ORDER BY fix_time) - row_number() OVER (PARTITION BY still ORDER BY fix_time) AS grp
      FROM p
    ),
    s AS (
      -- a stop lasts until the next (moving) position arrives, even across a reporting gap
      SELECT min(fix_time) AS t0, coalesce(max(next_t), max(fix_time)) AS t1,
             ST_Centroid(ST_Collect(location)) AS c, count(*) AS n
      FROM islands WHERE still GROUP BY grp
    )
    SELECT floor(extract(epoch FROM t0) * 1000)::bigint AS t0, floor(extract(epoch FROM t1) * 1000)::bigint AS t1,
           n::int, ST_AsGeoJSON(c, 6) AS geom
    FROM (SELECT * FROM s WHERE t1 - t0 >= make_interval(secs => ?) ORDER BY t1 - t0 DESC LIMIT ?) longest
    ORDER BY t0`,
    [o.stopSpeedKmh, o.device, from, to, from, to, o.minStopSeconds, o.maxStops],
  );

  type LineRow = {
    seg: number;
    n: number;
    points: number;
    t0: string;
    t1: string;
    geom: string;
    first: string;
    last: string;
  };
  type StopRow = { t0: string; t1: string; n: number; geom: string };
  const lineRows = lines.rows as LineRow[];
  const stopRows = stops.rows as StopRow[];

  const features: Feature[] = [];
  for (const r of lineRows) {
    const geometry = JSON.parse(r.geom) as Geometry;
    // A lone position between two gaps is a point, not a line.
    if (geometry.type !== 'LineString' || r.points < 2) continue;
    features.push({
      type: 'Feature',
      geometry,
      properties: { kind: 'track', from: Number(r.t0), to: Number(r.t1), points: r.points },
    });
  }
  for (const s of stopRows) {
    const t0 = Number(s.t0);
    const t1 = Number(s.t1);
    features.push({
      type: 'Feature',
      geometry: JSON.parse(s.geom) as Point,
      properties: { kind: 'stop', from: t0, to: t1, durationS: Math.round((t1 - t0) / 1000), positions: s.n },
    });
  }
  const firstRow = lineRows[0];
  const lastRow = lineRows[lineRows.length - 1];
  if (firstRow && lastRow) {
    features.push({
      type: 'Feature',
      geometry: JSON.parse(firstRow.first) as Point,
      properties: { kind: 'start', time: Number(firstRow.t0) },
    });
    features.push({
      type: 'Feature',
      geometry: JSON.parse(lastRow.last) as Point,
      properties: { kind: 'end', time: Number(lastRow.t1) },
    });
  }
  const positions = firstRow?.n ?? 0;
  const samples = o.samples > 0 ? await trackSamples(db, query, o.samples) : undefined;
  return {
    type: 'FeatureCollection',
    features,
    ...(samples ? { samples } : {}),
    meta: {
      positions,
      sampled: positions > o.maxInputPoints,
      tolerance,
      segments: features.filter((f) => f.properties?.kind === 'track').length,
      stops: stopRows.length,
    },
  };
}

/** Up to `max` positions of the range, evenly spread, first and last kept. */
async function trackSamples(db: Knex, query: TrackQuery, max: number): Promise<TrackSample[]> {
  const r = await db.raw(
    `
    WITH pts AS (
      SELECT p.fix_time, p.location, p.speed, p.heading,
             row_number() OVER (ORDER BY p.fix_time) AS rn, count(*) OVER () AS n
      FROM positions p
      WHERE ${DEVICE_RANGE} AND p.location IS NOT NULL AND ${GOOD_DATA}
    )
    SELECT floor(extract(epoch FROM fix_time) * 1000)::bigint AS t,
           round(ST_X(location)::numeric, 6)::float8 AS x, round(ST_Y(location)::numeric, 6)::float8 AS y,
           speed, heading
    FROM pts WHERE n <= ? OR (rn - 1) % ceil(n::numeric / ?)::bigint = 0 OR rn = n
    ORDER BY fix_time`,
    [
      query.device,
      new Date(query.fromMs),
      new Date(query.toMs),
      new Date(query.fromMs),
      new Date(query.toMs),
      max,
      max,
    ],
  );
  return (r.rows as { t: string; x: number; y: number; speed: number | null; heading: number | null }[]).map((p) => [
    Number(p.t),
    p.x,
    p.y,
    p.speed,
    p.heading,
  ]);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
