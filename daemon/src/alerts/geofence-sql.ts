/**
 * What PostGIS measures for the geofence check, and the state before a window, read from the
 * derivation's transaction. The decisions are made by the pure ./hysteresis.ts.
 *
 * Per fix, only fences whose bounding box lies within the margin of the fix are measured: the
 * `ST_Multi(area) && ST_Expand(point, pad)` condition uses the GiST expression index
 * `geofences_area_gist` (directus/sql/after-schema.sql), so the cost per fix grows with the fences
 * near it, not with all fences. `scanEveryFence` is the same measurement without the index, kept
 * for the benchmark's comparison.
 */
import type { Knex } from 'knex';
import { GEOFENCE_EVENT_TYPES } from '../contract/alerts.js';
import type { Fence, FenceState } from './hysteresis.js';

type Db = Knex | Knex.Transaction;

export interface FixPoint {
  lon: number;
  lat: number;
}

export interface Measured {
  /**
   * Signed distance (m, negative inside) of fix i to the boundary of each nearby active fence;
   * -Infinity / Infinity where the fix is clearly further than the margin inside / outside.
   */
  distances: Map<number, Map<number, number>>;
  fences: Map<number, Fence>;
}

const METRES_PER_DEGREE = 111_320;

/** Degrees that cover `marginM` around a latitude in both axes (longitude degrees shrink with latitude). */
export function padDegrees(marginM: number, lat: number): number {
  const cos = Math.max(0.01, Math.cos((lat * Math.PI) / 180));
  return ((marginM + 1) / METRES_PER_DEGREE / cos) * 1.01;
}

// The metres to the boundary (a geography distance, most of the statement's cost) are computed
// only where the fix lies within the pad of the boundary in degrees, which every fix within the
// margin of it does (padDegrees over-covers the margin in both axes); further in or out only the
// side matters to the hysteresis, so it is ±Infinity there.
const MEASURE = (join: string) => `
  SELECT u.i, g.id, g.name, g.speed_limit,
         CASE WHEN ST_Covers(g.area, u.pt) THEN -1 ELSE 1 END
           * CASE WHEN ST_DWithin(ST_Boundary(g.area), u.pt, u.pad)
                  THEN ST_Distance(ST_Boundary(g.area)::geography, u.pt::geography)
                  ELSE 'Infinity'::float8 END AS d
    FROM (SELECT x.i, ST_SetSRID(ST_MakePoint(x.lon, x.lat), 4326) AS pt, x.pad
            FROM unnest(?::int[], ?::float8[], ?::float8[], ?::float8[]) AS x(i, lon, lat, pad)) u
    JOIN geofences g ON g.active AND ${join}`;

async function measure(db: Db, fixes: readonly FixPoint[], marginM: number, join: string): Promise<Measured> {
  const distances = new Map<number, Map<number, number>>();
  const fences = new Map<number, Fence>();
  if (fixes.length === 0) return { distances, fences };
  const res = await db.raw<{
    rows: Array<{ i: number; id: number; name: string; speed_limit: number | null; d: number }>;
  }>(MEASURE(join), [
    fixes.map((_, i) => i),
    fixes.map((f) => f.lon),
    fixes.map((f) => f.lat),
    fixes.map((f) => padDegrees(marginM, f.lat)),
  ]);
  for (const r of res.rows) {
    const id = Number(r.id);
    if (!fences.has(id))
      fences.set(id, { id, name: r.name, speedLimit: r.speed_limit === null ? null : Number(r.speed_limit) });
    let m = distances.get(Number(r.i));
    if (!m) {
      m = new Map();
      distances.set(Number(r.i), m);
    }
    m.set(id, Number(r.d));
  }
  return { distances, fences };
}

/** Signed distances of each fix to the active fences within `marginM` of it (index-assisted). */
export function measureFixes(db: Db, fixes: readonly FixPoint[], marginM: number): Promise<Measured> {
  return measure(db, fixes, marginM, 'ST_Multi(g.area) && ST_Expand(u.pt, u.pad)');
}

/**
 * The same answer by testing every active fence against every fix with an exact distance in
 * degrees (which the expression index cannot serve): the benchmark's peer.
 */
export function scanEveryFence(db: Db, fixes: readonly FixPoint[], marginM: number): Promise<Measured> {
  return measure(db, fixes, marginM, 'ST_DWithin(g.area, u.pt, u.pad)');
}

/**
 * The state of each fence for each device before its `before`: inside after its last
 * geofence_enter, and a zone overspeed running after its last overspeed_start, from the stored
 * events. One statement for all devices.
 */
export async function priorFenceStates(
  db: Db,
  items: readonly { device: number; before: number }[],
): Promise<Map<number, Map<number, FenceState>>> {
  const out = new Map<number, Map<number, FenceState>>(items.map((i) => [i.device, new Map()]));
  if (items.length === 0) return out;
  const res = await db.raw<{
    rows: Array<{ device: number; key: string; type: string; ms: number; attributes: unknown }>;
  }>(
    `SELECT e.* FROM unnest(?::int[], ?::timestamptz[]) AS u(device, before)
       CROSS JOIN LATERAL (
         SELECT DISTINCT ON (key) device, key, type, (extract(epoch FROM time) * 1000)::float8 AS ms, attributes
           FROM events
          WHERE device = u.device AND time < u.before AND (type IN (?, ?) OR (type IN (?, ?) AND key LIKE 'zone:%'))
          ORDER BY key, time DESC, type DESC) e`,
    [
      items.map((i) => i.device),
      items.map((i) => new Date(i.before).toISOString()),
      GEOFENCE_EVENT_TYPES.enter,
      GEOFENCE_EVENT_TYPES.exit,
      GEOFENCE_EVENT_TYPES.overspeedStart,
      GEOFENCE_EVENT_TYPES.overspeedEnd,
    ],
  );
  const rows = new Map<number, typeof res.rows>(items.map((i) => [i.device, []]));
  for (const r of res.rows) rows.get(Number(r.device))?.push(r);
  for (const [device, list] of rows) out.set(device, fenceState(list));
  return out;
}

function fenceState(
  rows: Array<{ key: string; type: string; ms: number; attributes: unknown }>,
): Map<number, FenceState> {
  const state = new Map<number, FenceState>();
  const zones = new Map<number, { since: number; maxSpeed: number }>();
  for (const r of rows) {
    const attrs = (typeof r.attributes === 'string' ? JSON.parse(r.attributes) : (r.attributes ?? {})) as Record<
      string,
      unknown
    >;
    if (r.key.startsWith('zone:')) {
      if (r.type === GEOFENCE_EVENT_TYPES.overspeedStart) {
        zones.set(Number(r.key.slice(5)), { since: Number(r.ms), maxSpeed: Number(attrs.speed ?? 0) });
      }
      continue;
    }
    const since = typeof attrs.since === 'string' ? Date.parse(attrs.since) : Number(r.ms);
    if (r.type === GEOFENCE_EVENT_TYPES.enter)
      state.set(Number(r.key), { inside: true, since, pending: null, overspeed: null });
  }
  for (const [id, o] of zones) {
    const s = state.get(id);
    if (s) state.set(id, { ...s, overspeed: o });
  }
  return state;
}

/** Name and speed limit of active fences (for prior states of fences no fix is near). */
export async function fencesById(db: Db, ids: readonly number[]): Promise<Map<number, Fence>> {
  if (ids.length === 0) return new Map();
  const res = await db.raw<{ rows: Array<{ id: number; name: string; speed_limit: number | null }> }>(
    'SELECT id, name, speed_limit FROM geofences WHERE active AND id = ANY(?::int[])',
    [ids],
  );
  return new Map(
    res.rows.map((r) => [
      Number(r.id),
      { id: Number(r.id), name: r.name, speedLimit: r.speed_limit === null ? null : Number(r.speed_limit) },
    ]),
  );
}
