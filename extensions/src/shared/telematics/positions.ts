/**
 * Latest position of every device as one GeoJSON FeatureCollection, built inside PostgreSQL.
 *
 * The map polls this every few seconds for fleets of 10k devices, so two things keep it cheap:
 * - `fleetFingerprint` is one aggregate over `devices` (no JSON building, no geometry output). The
 *   endpoint turns it into an ETag, and an unchanged fleet is answered 304 without running the
 *   feature query at all.
 * - the feature query builds the JSON text in Postgres (`json_agg`), so Node only forwards a string
 *   instead of materialising 10k row objects and serialising them again.
 */
import { DEFAULT_POPUP_ATTRIBUTES } from '@fleet/daemon/contract/attributes';
import type { Knex } from 'knex';
import { z } from 'zod';
import { numberParam } from './query.js';

export type DeviceStatus = 'moving' | 'online' | 'offline';

/** A feature's properties in `latestPositionsGeoJson` (what the fleet map reads). */
export interface DevicePositionProps {
  id: number | string;
  name: string;
  imei: string;
  status: DeviceStatus;
  speed: number | null;
  heading: number | null;
  /** Epoch ms of the last fix and of the last report. */
  fix: number | null;
  seen: number | null;
  /** The requested attributes the device reports. */
  attrs: Record<string, unknown>;
}

export interface PositionsOptions {
  /** Attribute names copied from `devices.last_attributes` into each feature (at most 12). */
  attributes?: readonly string[];
  /** An online device at or above this speed (km/h) is `moving`. */
  movingSpeedKmh?: number;
  /** Only devices seen after this instant (ms since epoch): the `since` cursor of a delta poll. */
  sinceMs?: number;
}

export const DEFAULT_MOVING_SPEED_KMH = 5;
/**
 * A delta poll re-sends devices seen this long before the cursor: the processor commits batches a
 * little after `last_seen_at` was stamped, so a strict `>` would miss rows committed late.
 */
export const SINCE_OVERLAP_MS = 30_000;
const ATTRIBUTE_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

export class PositionsQueryError extends Error {
  override name = 'PositionsQueryError';
}

/** The /fleet/positions query string: `moving` (km/h), `since` (a cursor: epoch ms), `attributes`. */
const SINCE_MESSAGE = 'since must be a cursor from a previous response';
const PositionsParams = z.object({
  moving: numberParam(0, 1000, 'moving must be a speed in km/h (0-1000)', DEFAULT_MOVING_SPEED_KMH),
  // The message also covers a repeated parameter (since=1&since=2 arrives as an array).
  since: z
    .string(SINCE_MESSAGE)
    .optional()
    .refine((v) => v === undefined || (/^\d{1,16}$/.test(v) && Number(v) <= MAX_CURSOR_MS), SINCE_MESSAGE)
    .transform((v) => (v === undefined ? undefined : Number(v))),
  attributes: z.unknown().optional(),
});

/** Latest cursor accepted (the year 9999; a Date holds far more, PostgreSQL does not). */
const MAX_CURSOR_MS = Date.UTC(9999, 11, 31);

/** Reads the query string of /fleet/positions; anything malformed is a PositionsQueryError (400). */
export function parsePositionsQuery(q: Record<string, unknown>): PositionsOptions {
  const p = PositionsParams.safeParse(q);
  if (!p.success) throw new PositionsQueryError(p.error.issues[0]?.message ?? 'invalid query');
  const opts: PositionsOptions = { attributes: parseAttributeList(p.data.attributes), movingSpeedKmh: p.data.moving };
  if (p.data.since !== undefined) opts.sinceMs = p.data.since;
  return opts;
}

/** Validates the attribute list from a query string (`a,b,c`); bad names are an error, not ignored. */
export function parseAttributeList(raw: unknown): string[] {
  if (raw === undefined || raw === null || raw === '') return [...DEFAULT_POPUP_ATTRIBUTES];
  if (typeof raw !== 'string') throw new PositionsQueryError('attributes must be a comma-separated string');
  const names = [
    ...new Set(
      raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  ];
  if (names.length > 12) throw new PositionsQueryError('at most 12 attributes');
  for (const n of names) {
    if (!ATTRIBUTE_NAME.test(n)) throw new PositionsQueryError(`invalid attribute name: ${n}`);
  }
  return names;
}

export interface FleetFingerprint {
  devices: number;
  /** Newest `last_seen_at` (ms) over all devices, or 0: the next `since` cursor. */
  cursorMs: number;
  /** Changes whenever a device is added, removed, renamed, moved, or goes on/offline. */
  hash: string;
}

/**
 * One cheap aggregate that changes whenever anything the map shows changes. `bit_xor` of per-row
 * hashes catches renames and online flips that leave the timestamps alone; count catches deletes.
 */
export async function fleetFingerprint(db: Knex): Promise<FleetFingerprint> {
  const result = await db.raw(`
    SELECT count(*)::int AS devices,
           coalesce(floor(extract(epoch FROM max(last_seen_at)) * 1000), 0)::bigint AS seen,
           coalesce(floor(extract(epoch FROM max(last_fix_at)) * 1000), 0)::bigint AS fix,
           coalesce(bit_xor(hashtext(concat_ws('|', id, name, imei, online, enabled, last_fix_at, last_seen_at,
                                               last_speed, last_heading, md5(last_attributes::text)))), 0) AS x
    FROM devices`);
  const row = result.rows[0] as { devices: number; seen: string; fix: string; x: number };
  return {
    devices: row.devices,
    cursorMs: Number(row.seen),
    hash: `${row.devices.toString(36)}-${Number(row.seen).toString(36)}-${Number(row.fix).toString(36)}-${(row.x >>> 0).toString(36)}`,
  };
}

/** The ETag of one response: the fingerprint plus every option that shapes the body. */
export function positionsEtag(fp: FleetFingerprint, opts: PositionsOptions): string {
  const attrs = (opts.attributes ?? DEFAULT_POPUP_ATTRIBUTES).join(',');
  return `W/"${fp.hash}.${opts.movingSpeedKmh ?? DEFAULT_MOVING_SPEED_KMH}.${opts.sinceMs ?? ''}.${attrs}"`;
}

/**
 * GeoJSON text of the latest positions. Feature ids are device ids (so the map can use
 * feature-state); properties stay short because 10k of them travel on every full poll:
 * `id name imei status speed heading fix seen online attrs`.
 */
export async function latestPositionsGeoJson(db: Knex, opts: PositionsOptions = {}): Promise<string> {
  const attributes = opts.attributes ?? DEFAULT_POPUP_ATTRIBUTES;
  const moving = opts.movingSpeedKmh ?? DEFAULT_MOVING_SPEED_KMH;
  const since = opts.sinceMs === undefined ? null : new Date(opts.sinceMs - SINCE_OVERLAP_MS);
  // One `->` per requested key (names bound as parameters) is cheaper than expanding every
  // attribute with json_each; a key the device does not report is left out (strip nulls).
  const attrsSql = attributes.length
    ? `json_strip_nulls(json_build_object(${attributes.map(() => '?::text, d.last_attributes -> ?::text').join(', ')}))`
    : `'{}'::json`;
  const attrBindings = attributes.flatMap((a) => [a, a]);
  const result = await db.raw(
    `
    SELECT coalesce(json_agg(f), '[]'::json)::text AS features FROM (
      SELECT json_build_object(
        'type', 'Feature',
        'id', d.id,
        'geometry', ST_AsGeoJSON(d.last_location, 6)::json,
        'properties', json_build_object(
          'id', d.id,
          'name', coalesce(d.name, d.imei),
          'imei', d.imei,
          'status', CASE WHEN NOT coalesce(d.online, false) THEN 'offline'
                         WHEN coalesce(d.last_speed, 0) >= ?::double precision THEN 'moving'
                         ELSE 'online' END,
          'speed', d.last_speed,
          'heading', d.last_heading,
          'fix', floor(extract(epoch FROM d.last_fix_at) * 1000)::bigint,
          'seen', floor(extract(epoch FROM d.last_seen_at) * 1000)::bigint,
          'attrs', ${attrsSql}
        )) AS f
      FROM devices d
      WHERE d.last_location IS NOT NULL
        AND (?::timestamptz IS NULL OR d.last_seen_at > ?::timestamptz)
      ORDER BY d.id
    ) rows`,
    [moving, ...attrBindings, since, since],
  );
  const features = (result.rows[0] as { features: string }).features;
  return `{"type":"FeatureCollection","features":${features}}`;
}
