/**
 * Decoded AVL records → `positions` rows and the device's latest state. Pure: no I/O, so every
 * rule here (flags, jumps, "latest only moves forward") is tested without a database.
 */
import type { AvlRecord, IoList } from '../protocol/index.js';
import {
  type Fix,
  type FlagReason,
  type FlagRules,
  isJump,
  MAX_STORABLE_MS,
  recordFlags,
  storableFixTime,
} from './flags.js';

/** One stream entry after decoding: who sent it, when it arrived, what it carried. */
export interface DecodedEntry {
  /** Stream entry id in telemetry:avl. */
  id: string;
  imei: string;
  /** Epoch ms when ingestion received the frame. */
  receivedAt: number;
  records: AvlRecord[];
}

export interface PositionRow {
  imei: string;
  /** Epoch ms; beyond MAX_STORABLE_MS folded by storableFixTime (the raw value then sits in attributes.rawTimestamp). */
  fixTime: number;
  receivedAt: number;
  latitude: number;
  longitude: number;
  altitude: number;
  heading: number;
  speed: number;
  satellites: number;
  priority: number;
  eventIoId: number;
  /** JSON text: raw IO values by id. */
  io: string;
  /** JSON text: named IO values (with units applied) plus a few record facts. */
  attributes: string;
  /** Empty for a good record (then the shared NO_FLAGS). */
  flags: readonly FlagReason[];
}

/** The IO views of the protocol module, passed in so this file stays free of decoding concerns. */
export interface IoViews {
  /** The raw IO as JSON text. */
  ioJsonText(io: IoList): string;
  /** The named IO values as JSON text (an object). */
  attributesText(io: IoList): string;
}

/** `json`, an object's JSON text, with one more field (a key it does not have). */
function withField(json: string, key: string, value: number | string): string {
  const field = `"${key}":${JSON.stringify(value)}`;
  return json === '{}' ? `{${field}}` : `${json.slice(0, -1)},${field}}`;
}

export function recordToRow(
  imei: string,
  receivedAt: number,
  r: AvlRecord,
  rules: FlagRules,
  views: IoViews,
): PositionRow {
  const flags = recordFlags(r, rules);
  // The record's own facts follow the named values (the dictionary has no such names).
  let attributes = views.attributesText(r.io);
  if (r.generationType !== null) attributes = withField(attributes, 'generationType', r.generationType);
  // Keep the device's value (it is the evidence) but store a time the database can hold.
  if (!(r.timestamp <= MAX_STORABLE_MS)) attributes = withField(attributes, 'rawTimestamp', String(r.timestamp));
  return {
    imei,
    fixTime: storableFixTime(r.timestamp),
    receivedAt,
    latitude: r.latitude,
    longitude: r.longitude,
    altitude: r.altitude,
    heading: r.angle,
    speed: r.speed,
    satellites: r.satellites,
    priority: r.priority,
    eventIoId: r.eventIoId,
    io: views.ioJsonText(r.io),
    attributes,
    flags,
  };
}

export function entriesToRows(entries: readonly DecodedEntry[], rules: FlagRules, views: IoViews): PositionRow[] {
  const rows: PositionRow[] = [];
  for (const e of entries) {
    for (const r of e.records) rows.push(recordToRow(e.imei, e.receivedAt, r, rules, views));
  }
  return rows;
}

/**
 * What the jump rule remembers per device: the last good fix, and a candidate streak of fixes that
 * agree with each other but not with `ref` (the device really moved while silent, or `ref` itself
 * was wrong). After RELOCATE_STREAK such fixes the new place is accepted.
 */
export interface TrackState {
  ref: Fix | null;
  candidate: Fix | null;
  streak: number;
}

export const RELOCATE_STREAK = 3;

const JUMP_FLAGS: readonly FlagReason[] = Object.freeze(['jump']);

export function emptyTrack(ref: Fix | null = null): TrackState {
  return { ref, candidate: null, streak: 0 };
}

function inFixTimeOrder(rows: readonly PositionRow[]): boolean {
  for (let i = 1; i < rows.length; i++) if (rows[i]!.fixTime < rows[i - 1]!.fixTime) return false;
  return true;
}

function fixOf(row: PositionRow): Fix {
  return { time: row.fixTime, latitude: row.latitude, longitude: row.longitude };
}

/**
 * Flags `jump` on rows (mutating their `flags`) in fix-time order per device, starting from each
 * device's known state, and returns the states after the batch (only for devices in `rows`).
 * Records older than the reference fix are late arrivals: they are not compared (their
 * neighbours in time are unknown here) and never move the reference.
 */
export function flagJumps(
  rows: readonly PositionRow[],
  known: ReadonlyMap<string, TrackState>,
  maxSpeedKmh: number,
): Map<string, TrackState> {
  const byDevice = new Map<string, PositionRow[]>();
  for (const row of rows) {
    if (row.flags.length > 0) continue;
    let list = byDevice.get(row.imei);
    if (!list) {
      list = [];
      byDevice.set(row.imei, list);
    }
    list.push(row);
  }
  const out = new Map<string, TrackState>();
  for (const [imei, list] of byDevice) {
    // A device's records nearly always arrive in time order: sorting copies the list, checking does not.
    if (!inFixTimeOrder(list)) list.sort((a, b) => a.fixTime - b.fixTime);
    const prev = known.get(imei);
    const s: TrackState = prev ? { ...prev } : emptyTrack();
    for (const row of list) {
      const fix = fixOf(row);
      if (s.ref === null) {
        s.ref = fix;
        continue;
      }
      if (fix.time < s.ref.time) continue;
      if (!isJump(s.ref, fix, maxSpeedKmh)) {
        s.ref = fix;
        s.candidate = null;
        s.streak = 0;
        continue;
      }
      if (s.candidate !== null && fix.time >= s.candidate.time && !isJump(s.candidate, fix, maxSpeedKmh)) {
        s.streak += 1;
      } else {
        s.streak = 1;
      }
      s.candidate = fix;
      if (s.streak >= RELOCATE_STREAK) {
        s.ref = fix;
        s.candidate = null;
        s.streak = 0;
      } else {
        // Only unflagged rows get here, so this is their only reason.
        row.flags = JUMP_FLAGS;
      }
    }
    out.set(imei, s);
  }
  return out;
}

/** Per device, the good row with the greatest fix time (candidates for `devices.last_*`). */
export function latestPerDevice(rows: readonly PositionRow[]): Map<string, PositionRow> {
  const out = new Map<string, PositionRow>();
  for (const row of rows) {
    if (row.flags.length > 0) continue;
    const cur = out.get(row.imei);
    if (!cur || row.fixTime >= cur.fixTime) out.set(row.imei, row);
  }
  return out;
}

/** Per device, the latest receive time in the batch (`devices.last_seen_at`, flagged or not). */
export function seenPerDevice(entries: readonly Pick<DecodedEntry, 'imei' | 'receivedAt'>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of entries) {
    const cur = out.get(e.imei);
    if (cur === undefined || e.receivedAt > cur) out.set(e.imei, e.receivedAt);
  }
  return out;
}

/** Count of rows per flag reason (a row with two reasons counts under both). */
export function countFlags(rows: readonly PositionRow[]): Map<FlagReason, number> {
  const out = new Map<FlagReason, number>();
  for (const row of rows) for (const f of row.flags) out.set(f, (out.get(f) ?? 0) + 1);
  return out;
}
