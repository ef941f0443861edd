/**
 * Geofence entry/exit with hysteresis, and zone overspeed: a pure function of one device's fixes,
 * the geofences near them and the state before the first fix. No I/O: PostGIS measures (signed
 * distance of each fix to each nearby fence's boundary, see ./geofence-sql.ts), this decides.
 *
 * - Only unflagged fixes count (no fix, jumps and future times move nothing).
 * - A fix is clearly inside a fence when it is at least `marginM` inside the boundary, clearly
 *   outside when at least `marginM` outside; fixes in the band between change nothing.
 * - A change of side is confirmed after `dwellFixes` consecutive clear fixes on the other side
 *   spanning at least `dwellS` seconds; a clear fix back on the current side cancels it. The event
 *   carries the confirming fix's time (so it only depends on fixes up to it) and, as `since`, the
 *   first fix of the run (when the vehicle really crossed).
 * So a vehicle zig-zagging along a boundary yields one entry and one exit.
 * - Zone overspeed: while confirmed inside a fence with a speed limit, a fix faster than the limit
 *   starts an `overspeed_start` keyed `zone:<id>`; the first fix at or under the limit, or the exit,
 *   ends it with the maximum speed and the duration.
 */
import { GEOFENCE_EVENT_TYPES, zoneOverspeedKey } from '../contract/alerts.js';

export interface Fence {
  id: number;
  name: string;
  /** km/h; null = no zone speed limit. */
  speedLimit: number | null;
}

export interface FenceFix {
  /** Fix time, epoch ms. */
  time: number;
  /** positions.id of the fix, when it has one. */
  position: number | string | null;
  lon: number;
  lat: number;
  /** km/h */
  speed: number;
  flagged: boolean;
  /**
   * Signed distance in metres to the boundary of each nearby fence: negative inside; ±Infinity when
   * clearly further than the margin inside / outside (only the side matters there). Absent = far outside.
   */
  fences: ReadonlyMap<number, number>;
}

export interface HysteresisSettings {
  marginM: number;
  dwellS: number;
  dwellFixes: number;
}

export const DEFAULT_HYSTERESIS: HysteresisSettings = { marginM: 15, dwellS: 0, dwellFixes: 2 };

interface Run {
  /** Time of the first clear fix on the other side. */
  first: number;
  count: number;
}

/** Per (device, fence): confirmed side, pending change and zone overspeed in progress. */
export interface FenceState {
  inside: boolean;
  /** Since when the vehicle is on this side (the crossing time), if known. */
  since: number | null;
  pending: Run | null;
  overspeed: { since: number; maxSpeed: number } | null;
}

export interface DerivedEvent {
  type: string;
  time: number;
  key: string;
  lon: number;
  lat: number;
  position: number | string | null;
  attributes: Record<string, unknown>;
}

export const OUTSIDE: FenceState = Object.freeze({ inside: false, since: null, pending: null, overspeed: null });

type Side = 'in' | 'out' | 'band';

function sideOf(distance: number | undefined, marginM: number): Side {
  if (distance === undefined) return 'out';
  if (distance <= -marginM) return 'in';
  if (distance >= marginM) return 'out';
  return 'band';
}

/**
 * Events of one device for the given fixes (any order; sorted here), and the state after them.
 * `fences` must describe every fence id appearing in `prior` or in a fix's distances.
 */
export function geofenceEvents(
  fixes: readonly FenceFix[],
  fences: ReadonlyMap<number, Fence>,
  prior: ReadonlyMap<number, FenceState>,
  settings: HysteresisSettings = DEFAULT_HYSTERESIS,
): { events: DerivedEvent[]; state: Map<number, FenceState> } {
  const sorted = fixes.filter((f) => !f.flagged).sort((a, b) => a.time - b.time);
  const state = new Map<number, FenceState>();
  for (const [id, s] of prior) state.set(id, s);
  // Fences near any fix, plus those the device is inside (whose absence from a fix means "left").
  const ids = new Set<number>(prior.keys());
  for (const f of sorted) for (const id of f.fences.keys()) ids.add(id);

  const events: DerivedEvent[] = [];
  for (const id of [...ids].sort((a, b) => a - b)) {
    const fence = fences.get(id);
    if (!fence) continue;
    let s: FenceState = state.get(id) ?? OUTSIDE;
    for (const fix of sorted) {
      s = step(s, fence, fix, settings, events);
    }
    state.set(id, s);
  }
  // Stable: events of one fence at the same instant keep their causal order (overspeed end, exit).
  events.sort((a, b) => a.time - b.time);
  return { events, state };
}

function event(type: string, key: string, fix: FenceFix, attributes: Record<string, unknown>): DerivedEvent {
  return { type, time: fix.time, key, lon: fix.lon, lat: fix.lat, position: fix.position, attributes };
}

function step(
  s: FenceState,
  fence: Fence,
  fix: FenceFix,
  settings: HysteresisSettings,
  out: DerivedEvent[],
): FenceState {
  const side = sideOf(fix.fences.get(fence.id), settings.marginM);
  let next = s;
  if (side !== 'band') {
    const wantsInside = side === 'in';
    if (wantsInside === s.inside) {
      if (s.pending) next = { ...s, pending: null };
    } else {
      const run: Run = s.pending
        ? { first: s.pending.first, count: s.pending.count + 1 }
        : { first: fix.time, count: 1 };
      const confirmed = run.count >= Math.max(1, settings.dwellFixes) && fix.time - run.first >= settings.dwellS * 1000;
      if (!confirmed) {
        next = { ...s, pending: run };
      } else {
        const key = String(fence.id);
        const base = { geofence: fence.id, geofence_name: fence.name, since: new Date(run.first).toISOString() };
        if (wantsInside) {
          out.push(event(GEOFENCE_EVENT_TYPES.enter, key, fix, base));
          next = { inside: true, since: run.first, pending: null, overspeed: null };
        } else {
          if (s.overspeed) out.push(overspeedEnd(fence, fix, s.overspeed));
          const duration = s.since === null ? null : Math.round((run.first - s.since) / 1000);
          out.push(event(GEOFENCE_EVENT_TYPES.exit, key, fix, { ...base, duration_s: duration }));
          next = { inside: false, since: run.first, pending: null, overspeed: null };
        }
      }
    }
  }
  if (next.inside && fence.speedLimit !== null) next = zoneSpeed(next, fence, fence.speedLimit, fix, out);
  return next;
}

function zoneSpeed(s: FenceState, fence: Fence, limit: number, fix: FenceFix, out: DerivedEvent[]): FenceState {
  const over = fix.speed > limit;
  if (over && !s.overspeed) {
    out.push(
      event(GEOFENCE_EVENT_TYPES.overspeedStart, zoneOverspeedKey(fence.id), fix, {
        geofence: fence.id,
        geofence_name: fence.name,
        limit,
        speed: fix.speed,
      }),
    );
    return { ...s, overspeed: { since: fix.time, maxSpeed: fix.speed } };
  }
  if (over && s.overspeed) {
    return fix.speed > s.overspeed.maxSpeed ? { ...s, overspeed: { ...s.overspeed, maxSpeed: fix.speed } } : s;
  }
  if (!over && s.overspeed) {
    out.push(overspeedEnd(fence, fix, s.overspeed));
    return { ...s, overspeed: null };
  }
  return s;
}

function overspeedEnd(fence: Fence, fix: FenceFix, o: { since: number; maxSpeed: number }): DerivedEvent {
  return event(GEOFENCE_EVENT_TYPES.overspeedEnd, zoneOverspeedKey(fence.id), fix, {
    geofence: fence.id,
    geofence_name: fence.name,
    limit: fence.speedLimit,
    max_speed: o.maxSpeed,
    duration_s: Math.round((fix.time - o.since) / 1000),
  });
}
