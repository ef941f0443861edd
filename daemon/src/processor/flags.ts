/**
 * Data-quality rules for AVL records. Bad records are never dropped (the device was acknowledged,
 * so they are ours to keep): they are stored with the reasons listed here and left out of the
 * device's latest state and of the map.
 */
import type { AvlRecord } from '../protocol/index.js';

export const FLAG_REASONS = [
  /** No satellites, or coordinates exactly 0/0: the device had no fix (it repeats its last one). */
  'no_fix',
  /** Latitude/longitude outside the WGS84 range. */
  'bad_coordinates',
  /** Fix time later than now + the configured margin (wrong RTC, GNSS week rollover). */
  'future',
  /** Fix time before 2000-01-01 (RTC not set after power loss). */
  'before_2000',
  /** Moving from the previous good fix would need an implausible speed. */
  'jump',
  /** Speed 0xFFFF: no documented sentinel, but certainly not a real speed. */
  'bad_speed',
] as const;
export type FlagReason = (typeof FLAG_REASONS)[number];

export const Y2000_MS = Date.UTC(2000, 0, 1);
/** Largest fix time stored as is: beyond it a timestamptz (and a JS Date) can not hold the value. */
export const MAX_STORABLE_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
/** Fix times beyond MAX_STORABLE_MS are folded into [FAR_FUTURE_FROM_MS, MAX_STORABLE_MS]. */
export const FAR_FUTURE_FROM_MS = Date.UTC(9000, 0, 1);
const FAR_FUTURE_SPAN_MS = MAX_STORABLE_MS - FAR_FUTURE_FROM_MS + 1;

/**
 * The fix time to store for a device's timestamp. Beyond what a timestamptz holds, the value is
 * folded (modulo ~1000 years) into the years 9000–9999 instead of clamped to one instant: the
 * natural key includes the fix time, so a clamp would make distinct records of a device share one
 * key and all but one vanish although acknowledged. Distinct values stay distinct unless they are a
 * multiple of ~1000 years apart (and, above 2^53 ms, a double's precision apart); such rows are
 * flagged `future` and keep the device's value in `attributes.rawTimestamp`.
 */
export function storableFixTime(timestamp: number): number {
  if (timestamp <= MAX_STORABLE_MS) return timestamp;
  return FAR_FUTURE_FROM_MS + ((timestamp - FAR_FUTURE_FROM_MS) % FAR_FUTURE_SPAN_MS);
}
/** Below this distance a jump is GNSS noise, however short the time between fixes. */
export const JUMP_MIN_DISTANCE_M = 1000;

export interface FlagRules {
  /** Reference "now" in epoch ms (the processing time). */
  now: number;
  /** Fix times later than now + this are `future`. */
  futureMarginMs: number;
}

/** A good record's reasons: one shared empty list, not an array per record kept until its commit. */
export const NO_FLAGS: readonly FlagReason[] = Object.freeze([]);

/** Reasons that depend on the record alone (everything but `jump`). */
export function recordFlags(r: AvlRecord, rules: FlagRules): readonly FlagReason[] {
  const noFix = r.satellites === 0 || (r.latitude === 0 && r.longitude === 0);
  const badCoordinates = !(Math.abs(r.latitude) <= 90 && Math.abs(r.longitude) <= 180);
  const future = !(r.timestamp <= rules.now + rules.futureMarginMs);
  const before2000 = r.timestamp < Y2000_MS;
  const badSpeed = r.speed === 0xffff;
  if (!(noFix || badCoordinates || future || before2000 || badSpeed)) return NO_FLAGS;
  const flags: FlagReason[] = [];
  if (noFix) flags.push('no_fix');
  if (badCoordinates) flags.push('bad_coordinates');
  if (future) flags.push('future');
  if (before2000) flags.push('before_2000');
  if (badSpeed) flags.push('bad_speed');
  return flags;
}

const EARTH_RADIUS_M = 6_371_008.8;

/** Great-circle distance in metres (haversine). */
export function distanceMetres(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(a)));
}

export interface Fix {
  time: number;
  latitude: number;
  longitude: number;
}

/**
 * True when going from `from` to `to` needs more than `maxSpeedKmh`. Time differences under a
 * second count as one second (devices log several records in the same second), and distances
 * under JUMP_MIN_DISTANCE_M never count (noise).
 */
export function isJump(from: Fix, to: Fix, maxSpeedKmh: number): boolean {
  const metres = distanceMetres(from.latitude, from.longitude, to.latitude, to.longitude);
  if (metres <= JUMP_MIN_DISTANCE_M) return false;
  const seconds = Math.max(1, Math.abs(to.time - from.time) / 1000);
  return (metres / seconds) * 3.6 > maxSpeedKmh;
}
