/**
 * Positions of one device → trips, stops, events, daily summaries and accumulator totals. Pure.
 *
 * The timeline between consecutive good fixes is cut into intervals; an interval is "moving" when
 * either end fix is moving (so a trip starts at the last parked fix and a stop at the first parked
 * one) and the fixes are at most `maxGapS` apart (a longer gap counts as stopped time). Runs of
 * stopped intervals lasting `minStopDurationS` are stops; what lies between two stops is a trip if
 * it lasts `minTripDurationS` and covers `minTripDistanceM`, otherwise it is absorbed by the stop
 * around it. Flagged records (no fix, jumps, bad times) never start, end or lengthen anything; the
 * IO of a record whose time can be trusted still yields its events.
 *
 * A window starts at `from`, the start of a stored stop (see `resetPoint`): a stop start depends
 * only on fixes from there on, so deriving from it gives what a derivation from the first record
 * gives. Daily summaries need the whole first day, so the caller also passes the fixes from the
 * start of that day, and what came before (PriorTotals) as numbers.
 */
import { DateTime } from 'luxon';
import { distanceMetres } from '../processor/flags.js';
import type { DetectionSettings } from './settings.js';
import type {
  DerivedDay,
  DerivedEvent,
  DerivedStop,
  DerivedTrip,
  DerivedWindow,
  HistoryPosition,
  LatLon,
  PriorTotals,
} from './types.js';

export interface WindowInput {
  /** Start of the window (a stored stop's start); null = from the device's first record. */
  from: number | null;
  /**
   * Records from the start of `from`'s day (in the device's zone) onwards, plus the last good fix
   * and the last record with a trusted time before that, if any. Any order.
   */
  positions: readonly HistoryPosition[];
  settings: DetectionSettings;
  prior: PriorTotals;
}

/** Records whose fix time is not to be trusted: nothing derives from them. */
const UNTRUSTED_TIME = new Set(['future', 'before_2000']);

export const isTrustedTime = (p: HistoryPosition) => !p.flags.some((f) => UNTRUSTED_TIME.has(f));
export const isGoodFix = (p: HistoryPosition) => p.flags.length === 0;

/** Deterministic order: positions are unique on (device, fix_time, event_io_id). */
export function byTime(a: HistoryPosition, b: HistoryPosition): number {
  return a.time - b.time || a.eventIoId - b.eventIoId;
}

/** Start of the local day holding `time`, and that day's key. */
export function dayOf(time: number, zone: string): { key: string; start: number; next: number } {
  const hit = lastDay.get(zone);
  if (hit && time >= hit.start && time < hit.next) return hit;
  const d = DateTime.fromMillis(time, { zone }).startOf('day');
  const day = { key: d.toISODate() ?? '', start: d.toMillis(), next: d.plus({ days: 1 }).toMillis() };
  lastDay.set(zone, day);
  return day;
}
/** Consecutive lookups mostly fall on the same day: remember the last one per zone. */
const lastDay = new Map<string, { key: string; start: number; next: number }>();

function isMoving(p: HistoryPosition, s: DetectionSettings): boolean {
  const byIo =
    s.motionSource === 'movement'
      ? p.attributes.movement
      : s.motionSource === 'ignition'
        ? p.attributes.ignition
        : undefined;
  if (typeof byIo === 'boolean') return byIo;
  return p.speed >= s.speedThresholdKmh;
}

const ignitionOf = (p: HistoryPosition) => p.attributes.ignition === true;
const loc = (p: HistoryPosition): LatLon => ({ lat: p.lat, lon: p.lon });
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

interface Interval {
  /** Index of the fix where it starts (in the fixes array); it ends at fix i+1. */
  i: number;
  t0: number;
  t1: number;
  moving: boolean;
  /** Not a gap and ignition on at its start. */
  engine: boolean;
  gap: boolean;
  /** Distance while moving, decimetres. */
  distDm: number;
}

function buildIntervals(fixes: readonly HistoryPosition[], s: DetectionSettings): Interval[] {
  const out: Interval[] = [];
  const maxGapMs = s.maxGapS * 1000;
  for (let i = 0; i + 1 < fixes.length; i++) {
    const a = fixes[i]!;
    const b = fixes[i + 1]!;
    const dt = b.time - a.time;
    const gap = dt > maxGapMs;
    const moving = !gap && (isMoving(a, s) || isMoving(b, s));
    let distDm = 0;
    if (moving) {
      const oa = num(a.attributes.totalOdometer);
      const ob = num(b.attributes.totalOdometer);
      const gps = distanceMetres(a.lat, a.lon, b.lat, b.lon);
      // The device's odometer where both fixes carry it and it moved forward plausibly (≤ 2× GPS + 1 km).
      const metres = oa !== null && ob !== null && ob >= oa && ob - oa <= 2 * gps + 1000 ? ob - oa : gps;
      distDm = Math.round(metres * 10);
    }
    out.push({ i, t0: a.time, t1: b.time, moving, engine: !gap && ignitionOf(a), gap, distDm });
  }
  return out;
}

/** Trips, stops and their events from the fixes at or after `from` (all `fixes` when from is null). */
function segment(
  fixes: readonly HistoryPosition[],
  intervals: readonly Interval[],
  first: number,
  s: DetectionSettings,
  odometerAt: (fixIndex: number) => number,
): { trips: DerivedTrip[]; stops: DerivedStop[]; events: DerivedEvent[] } {
  const trips: DerivedTrip[] = [];
  const stops: DerivedStop[] = [];
  const events: DerivedEvent[] = [];
  const last = fixes.length - 1;
  if (first > last) return { trips, stops, events };

  // Maximal runs of stopped intervals (fix index range [s, e]) lasting at least minStop.
  const minStopMs = s.minStopDurationS * 1000;
  const runs: { s: number; e: number }[] = [];
  for (let k = first; k < last; ) {
    if (intervals[k]!.moving) {
      k++;
      continue;
    }
    let e = k;
    while (e < last && !intervals[e]!.moving) e++;
    if (fixes[e]!.time - fixes[k]!.time >= minStopMs) runs.push({ s: k, e });
    k = e;
  }

  // Candidate trips between runs, trimmed to their moving intervals.
  const candidate = (a: number, b: number): { s: number; e: number } | null => {
    let x = a;
    while (x < b && !intervals[x]!.moving) x++;
    let y = b;
    while (y > x && !intervals[y - 1]!.moving) y--;
    return x < y ? { s: x, e: y } : null;
  };
  const passes = (c: { s: number; e: number }): boolean => {
    let dm = 0;
    for (let k = c.s; k < c.e; k++) dm += intervals[k]!.distDm;
    return fixes[c.e]!.time - fixes[c.s]!.time >= s.minTripDurationS * 1000 && dm >= s.minTripDistanceM * 10;
  };

  const engineMs = (a: number, b: number) => {
    let ms = 0;
    for (let k = a; k < b; k++) if (intervals[k]!.engine) ms += intervals[k]!.t1 - intervals[k]!.t0;
    return ms;
  };
  const closeStop = (startIdx: number, endIdx: number | null) => {
    const to = endIdx ?? last;
    const p = fixes[startIdx]!;
    stops.push({
      startTime: p.time,
      endTime: endIdx === null ? null : fixes[endIdx]!.time,
      location: loc(p),
      position: p.id,
      durationS: Math.round((fixes[to]!.time - p.time) / 1000),
      engineOnS: Math.round(engineMs(startIdx, to) / 1000),
    });
  };
  const emitTrip = (c: { s: number; e: number }, inProgress: boolean) => {
    const a = fixes[c.s]!;
    const b = fixes[c.e]!;
    let distDm = 0;
    let drivingMs = 0;
    let idleMs = 0;
    for (let k = c.s; k < c.e; k++) {
      const iv = intervals[k]!;
      if (iv.moving) {
        distDm += iv.distDm;
        drivingMs += iv.t1 - iv.t0;
      } else if (iv.engine) idleMs += iv.t1 - iv.t0;
    }
    let maxSpeed = 0;
    for (let k = c.s; k <= c.e; k++) maxSpeed = Math.max(maxSpeed, fixes[k]!.speed);
    const odo = (idx: number) => {
      const io = num(fixes[idx]!.attributes.totalOdometer);
      return io !== null ? io / 1000 : odometerAt(idx) / 10_000;
    };
    const trip: DerivedTrip = {
      startTime: a.time,
      endTime: b.time,
      start: loc(a),
      end: loc(b),
      startPosition: a.id,
      endPosition: b.id,
      distanceDm: distDm,
      durationS: Math.round((b.time - a.time) / 1000),
      drivingS: Math.round(drivingMs / 1000),
      idleS: Math.round(idleMs / 1000),
      maxSpeed,
      avgSpeed: drivingMs > 0 ? Math.round((distDm / 10_000 / (drivingMs / 3_600_000)) * 10) / 10 : 0,
      startOdometerKm: odo(c.s),
      endOdometerKm: odo(c.e),
      inProgress,
    };
    trips.push(trip);
    events.push({ time: a.time, type: 'trip_start', key: '', location: loc(a), attributes: {}, position: a.id });
    if (!inProgress) {
      events.push({
        time: b.time,
        type: 'trip_end',
        key: '',
        location: loc(b),
        attributes: { distance_km: distDm / 10_000, duration_s: trip.durationS },
        position: b.id,
      });
    }
    overspeeds(fixes, c, inProgress && c.e === last, s, events);
  };

  // Walk: [lead] run1 [cand1] run2 [cand2] ... runK [trailing]. A failing candidate is absorbed by
  // the stop around it; a failing leading candidate (data starts mid-drive) is dropped.
  let stopStart: number | null = null;
  let cursor = first;
  for (let r = 0; r <= runs.length; r++) {
    const run = runs[r];
    const c = candidate(cursor, run ? run.s : last);
    const ok = c !== null && passes(c);
    if (ok) {
      if (stopStart !== null) closeStop(stopStart, c.s);
      emitTrip(c, run === undefined);
      stopStart = null;
    }
    if (!run) break;
    stopStart ??= run.s;
    cursor = run.e;
  }
  if (stopStart !== null) closeStop(stopStart, null);
  return { trips, stops, events };
}

function overspeeds(
  fixes: readonly HistoryPosition[],
  c: { s: number; e: number },
  openAtEnd: boolean,
  s: DetectionSettings,
  events: DerivedEvent[],
): void {
  const limit = s.overspeedLimitKmh;
  if (limit === null) return;
  const minMs = s.overspeedMinDurationS * 1000;
  for (let k = c.s; k <= c.e; k++) {
    if (fixes[k]!.speed <= limit) continue;
    let e = k;
    let max = 0;
    while (e <= c.e && fixes[e]!.speed > limit) max = Math.max(max, fixes[e++]!.speed);
    // The run ends at the first fix back under the limit, or at the trip's end.
    const open = e > c.e && openAtEnd;
    const endIdx = Math.min(e, c.e);
    const a = fixes[k]!;
    const b = fixes[endIdx]!;
    const ms = b.time - a.time;
    if (ms >= minMs && ms > 0) {
      events.push({
        time: a.time,
        type: 'overspeed_start',
        key: '',
        location: loc(a),
        attributes: { limit, speed: a.speed },
        position: a.id,
      });
      if (!open) {
        events.push({
          time: b.time,
          type: 'overspeed_end',
          key: '',
          location: loc(b),
          attributes: { limit, max_speed: max, duration_s: Math.round(ms / 1000) },
          position: b.id,
        });
      }
    }
    k = e;
  }
}

const GREEN_DRIVING: Record<number, string> = { 1: 'harsh_acceleration', 2: 'harsh_braking', 3: 'harsh_cornering' };

function powerLevel(v: unknown, lowV: number): 'ok' | 'low' | 'lost' | null {
  const n = num(v);
  if (n === null) return null;
  return n < 1 ? 'lost' : n < lowV ? 'low' : 'ok';
}

/** One event of record `p` (a module function, not a closure per record: this runs for every record of a window). */
function pushRecordEvent(
  out: DerivedEvent[],
  p: HistoryPosition,
  type: string,
  attributes: Record<string, unknown> = {},
): void {
  out.push({ time: p.time, type, key: '', location: isGoodFix(p) ? loc(p) : null, attributes, position: p.id });
}

/** Events of one record given the record before it (IO edges, alarms the device reports). */
function recordEvents(
  prev: HistoryPosition | null,
  p: HistoryPosition,
  s: DetectionSettings,
  out: DerivedEvent[],
): void {
  const a = p.attributes;

  if (prev) {
    const offlineMs = s.offlineAfterS * 1000;
    if (p.time - prev.time > offlineMs) {
      out.push({
        time: prev.time + offlineMs,
        type: 'device_offline',
        key: '',
        location: isGoodFix(prev) ? loc(prev) : null,
        attributes: { last_record: new Date(prev.time).toISOString() },
        position: null,
      });
      pushRecordEvent(out, p, 'device_online', { offline_s: Math.round((p.time - prev.time - offlineMs) / 1000) });
    }
    const was = prev.attributes.ignition;
    if (typeof was === 'boolean' && typeof a.ignition === 'boolean' && was !== a.ignition) {
      pushRecordEvent(out, p, a.ignition ? 'ignition_on' : 'ignition_off');
    }
    const before = powerLevel(prev.attributes.externalVoltage, s.lowPowerV);
    const now = powerLevel(a.externalVoltage, s.lowPowerV);
    if (before !== null && now !== null && before !== now) {
      const type = now === 'ok' ? 'power_restored' : now === 'low' ? 'power_low' : 'power_lost';
      pushRecordEvent(out, p, type, { voltage: a.externalVoltage, limit: s.lowPowerV });
    }
  }

  // Alarm IOs arrive as event records: the record's event IO id names the element that changed.
  switch (p.eventIoId) {
    case 247:
      if ((num(a.crashDetection) ?? 0) > 0) pushRecordEvent(out, p, 'crash', { code: a.crashDetection });
      break;
    case 246:
      if (a.towing === true) pushRecordEvent(out, p, 'towing');
      break;
    case 249:
      if (a.jamming === true) pushRecordEvent(out, p, 'jamming');
      break;
    case 252:
      if (a.unplug === true) pushRecordEvent(out, p, 'unplug');
      break;
    case 251:
      if (a.idling === true) pushRecordEvent(out, p, 'idling');
      break;
    case 236:
      if (a.alarm === true) pushRecordEvent(out, p, 'alarm');
      break;
    case 253: {
      const type = GREEN_DRIVING[num(a.greenDrivingType) ?? 0];
      if (type) pushRecordEvent(out, p, type, { value: a.greenDrivingValue ?? null });
      break;
    }
    case 78:
      if (typeof a.iButton === 'string' && /[^0]/.test(a.iButton))
        pushRecordEvent(out, p, 'driver_change', { ibutton: a.iButton });
      break;
  }
}

/**
 * Whether an event at or after `from` belongs to the window starting there. The trip (and its
 * overspeed) ending exactly at `from` belongs to the window before: `from` is a stop's start.
 */
export function ownsEvent(event: { time: number; type: string }, from: number | null): boolean {
  if (from === null) return true;
  if (event.time > from) return true;
  return event.time === from && event.type !== 'trip_end' && event.type !== 'overspeed_end';
}

/**
 * Calls `add` for each local day an interval covers, with that day's share of `value` (split by
 * time, rounded; the last part takes the remainder so shares add up exactly). Days before `from`
 * (a day start) are skipped, but their shares are computed the same way as in a whole derivation.
 */
function splitByDay(
  iv: Interval,
  from: number,
  zone: string,
  add: (key: string, share: number, ms: number) => void,
  value: number,
): void {
  let t = iv.t0;
  let left = value;
  const total = iv.t1 - iv.t0;
  while (t < iv.t1) {
    const d = dayOf(t, zone);
    const end = Math.min(iv.t1, d.next);
    const ms = end - t;
    const share = end === iv.t1 ? left : Math.round((value * ms) / total);
    if (t >= from) add(d.key, share, ms);
    left -= share;
    t = end;
  }
}

/**
 * The window's trips, stops, events, days and totals. `from` null derives everything; otherwise
 * only rows starting at or after `from` (days from `from`'s day) are returned.
 */
export function deriveWindow(input: WindowInput): DerivedWindow {
  const { settings: s, from, prior } = input;
  const zone = s.timeZone;
  const dayFrom = from === null ? null : dayOf(from, zone).start;
  const trusted = input.positions.filter(isTrustedTime).sort(byTime);
  const fixes = trusted.filter(isGoodFix);
  const intervals = buildIntervals(fixes, s);

  // Computed odometer at each fix: prior days + distance since the first day's start.
  const clipFrom = dayFrom ?? Number.NEGATIVE_INFINITY;
  const cumDm: number[] = new Array(fixes.length).fill(prior.distanceDm);
  let acc = prior.distanceDm;
  // Callbacks made once per window, not per interval (this runs on every pass over every window).
  const addDistance = (_key: string, share: number) => {
    acc += share;
  };
  for (let k = 0; k < intervals.length; k++) {
    const iv = intervals[k]!;
    // An interval wholly from clipFrom on adds all of its shares, which sum to its distance.
    if (iv.distDm > 0 && iv.t0 >= clipFrom) acc += iv.distDm;
    else if (iv.distDm > 0 && iv.t1 > clipFrom) splitByDay(iv, clipFrom, zone, addDistance, iv.distDm);
    cumDm[k + 1] = acc;
  }

  const firstFix = from === null ? 0 : fixes.findIndex((f) => f.time >= from);
  const seg =
    firstFix < 0
      ? { trips: [], stops: [], events: [] }
      : segment(fixes, intervals, firstFix, s, (idx) => cumDm[idx] ?? prior.distanceDm);

  // Per-record events from `from` on, each compared with the record before it.
  const events: DerivedEvent[] = [...seg.events];
  let prev: HistoryPosition | null = null;
  for (const p of trusted) {
    if (from === null || p.time >= from) recordEvents(prev, p, s, events);
    prev = p;
  }

  // Daily summaries from `from`'s day.
  const days = new Map<string, DerivedDay>();
  const day = (key: string): DerivedDay => {
    let d = days.get(key);
    if (!d) {
      d = {
        day: key,
        distanceDm: 0,
        drivingS: 0,
        idleS: 0,
        engineS: 0,
        trips: 0,
        stops: 0,
        maxSpeed: null,
        firstFix: null,
        lastFix: null,
      };
      days.set(key, d);
    }
    return d;
  };
  const driveMs = new Map<string, number>();
  const idleMs = new Map<string, number>();
  const engMs = new Map<string, number>();
  const addMs = (m: Map<string, number>, k: string, ms: number) => m.set(k, (m.get(k) ?? 0) + ms);
  let iv: Interval | undefined;
  const addShare = (key: string, share: number, ms: number) => {
    const d = day(key);
    d.distanceDm += share;
    if (iv!.moving) addMs(driveMs, key, ms);
    else if (iv!.engine) addMs(idleMs, key, ms);
    if (iv!.engine) addMs(engMs, key, ms);
  };
  for (iv of intervals) {
    if (iv.t1 <= clipFrom) continue;
    splitByDay(iv, clipFrom, zone, addShare, iv.distDm);
  }
  for (const f of fixes) {
    if (f.time < clipFrom) continue;
    const d = day(dayOf(f.time, zone).key);
    d.maxSpeed = Math.max(d.maxSpeed ?? 0, f.speed);
    d.firstFix ??= f.time;
    d.lastFix = f.time;
  }
  if (from !== null && (prior.tripsBefore > 0 || prior.stopsBefore > 0)) {
    const d = day(dayOf(from, zone).key);
    d.trips += prior.tripsBefore;
    d.stops += prior.stopsBefore;
  }
  for (const t of seg.trips) day(dayOf(t.startTime, zone).key).trips++;
  for (const st of seg.stops) day(dayOf(st.startTime, zone).key).stops++;
  for (const d of days.values()) {
    d.drivingS = Math.round((driveMs.get(d.day) ?? 0) / 1000);
    d.idleS = Math.round((idleMs.get(d.day) ?? 0) / 1000);
    d.engineS = Math.round((engMs.get(d.day) ?? 0) / 1000);
  }

  // One event per natural key (device, type, time, key), in time order.
  const seen = new Set<string>();
  const owned = events
    .filter((e) => ownsEvent(e, from))
    .sort((a, b) => a.time - b.time || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
    .filter((e) => {
      const k = `${e.type}|${e.time}|${e.key}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });

  // Totals add whole days as stored (seconds), so a window's totals equal a whole derivation's.
  let distanceTotal = prior.distanceDm;
  let engineTotal = prior.engineMs;
  for (const d of days.values()) {
    distanceTotal += d.distanceDm;
    engineTotal += d.engineS * 1000;
  }
  const lastFix = fixes[fixes.length - 1];
  const lastRecord = trusted[trusted.length - 1];
  const ioOdo = lastFix ? num(lastFix.attributes.totalOdometer) : null;
  const ioEngine = lastRecord ? num(lastRecord.attributes.ignitionOnCounter) : null;
  return {
    trips: seg.trips,
    stops: seg.stops,
    events: owned,
    days: [...days.values()].sort((a, b) => (a.day < b.day ? -1 : 1)),
    totals: {
      distanceDm: distanceTotal,
      engineMs: engineTotal,
      ioOdometerKm: ioOdo === null ? null : ioOdo / 1000,
      ioEngineHours: ioEngine === null ? null : ioEngine / 3600,
    },
  };
}

/**
 * Where a recomputation for new records at or after `earliest` must start: the start of the
 * latest stored stop that ended at or before the last good fix preceding them (its start and the
 * trip before it cannot change), or null (from the first record) when there is none.
 */
export function resetPoint(
  stops: readonly { startTime: number; endTime: number | null }[],
  lastFixBefore: number | null,
): number | null {
  if (lastFixBefore === null) return null;
  let best: number | null = null;
  for (const st of stops) {
    if (st.endTime !== null && st.endTime <= lastFixBefore && (best === null || st.startTime > best))
      best = st.startTime;
  }
  return best;
}
