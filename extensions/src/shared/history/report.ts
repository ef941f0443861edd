/**
 * The Reports panel's tables: which collection and fields each tab reads, how an item becomes a
 * row of plain values, the totals line, and the same rows as CSV. Pure, shared by the endpoint
 * (which also writes XLSX) and tested without a server, so an export holds exactly the rows the
 * panel shows.
 */

import { GEOFENCE_EVENT_TYPES } from '@fleet/daemon/contract';
import { DAILY_SUMMARIES_TABLE, historyColumns, STOPS_TABLE, TRIPS_TABLE } from '@fleet/daemon/history';
import { formatTimeIn, isTimeZone } from '../format/index.js';

/** An item as Directus's ItemsService returns it (JSON, nested device). */
// biome-ignore lint/suspicious/noExplicitAny: JSON items, read field by field into rows
export type Item = Record<string, any>;

export const REPORT_KINDS = ['trips', 'stops', 'events', 'days', 'visits'] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

export interface Column {
  key: string;
  label: string;
  /** Summed in the totals line. */
  sum?: boolean;
  /** Maximum in the totals line. */
  max?: boolean;
  /** A time: its label names the report's time zone. */
  time?: boolean;
  /** Seconds: the panel shows them as h:mm:ss. */
  seconds?: boolean;
}

export type Cell = string | number | null;
export type Row = Record<string, Cell> & { id: number | string };

export interface Report {
  kind: ReportKind;
  /** IANA zone of every time cell. */
  timeZone: string;
  columns: Column[];
  rows: Row[];
  totals: Record<string, Cell>;
  /** True when more items matched than the limit. */
  truncated: boolean;
}

interface KindSpec {
  collection: string;
  /** Time field filtered by the range and sorted on. */
  timeField: string;
  fields: string[];
  columns: Column[];
  row(item: Item, time: (v: unknown) => string): Omit<Row, 'id'>;
  /** Items read → the report's items (visits pair events); default: as read. */
  collect?(items: Item[], q: ReportQuery): Item[];
}

type DeviceItem = { id?: number; name?: string | null; imei?: string } | null | undefined;
/** The device column, and what the panel needs to name the device to the map (not exported). */
const deviceCells = (d: DeviceItem) => ({
  device: d ? (d.name ? `${d.name} (${d.imei ?? ''})` : (d.imei ?? '')) : '',
  device_id: d?.id ?? null,
  device_name: d?.name ?? null,
  device_imei: d?.imei ?? null,
});
const num = (v: unknown): number | null => (v === null || v === undefined || v === '' ? null : Number(v));
const coords = (p: { coordinates?: [number, number] } | null | undefined): string =>
  p?.coordinates ? `${p.coordinates[1].toFixed(6)}, ${p.coordinates[0].toFixed(6)}` : '';
const round = (v: number | null, digits: number) => (v === null ? null : Number(v.toFixed(digits)));
const lonLat = (p: { coordinates?: [number, number] } | null | undefined) => ({
  lon: p?.coordinates?.[0] ?? null,
  lat: p?.coordinates?.[1] ?? null,
});

/** The row id and the device as the report shows it. */
const DEVICE_FIELDS = ['id', 'device.id', 'device.name', 'device.imei'];

/** Events and geofence visits read the same collection and fields. */
const EVENT_SOURCE = {
  collection: 'events',
  timeField: 'time',
  fields: [...DEVICE_FIELDS, 'time', 'type', 'key', 'location', 'attributes'],
};

export const REPORTS: Record<ReportKind, KindSpec> = {
  trips: {
    collection: 'trips',
    timeField: 'start_time',
    fields: [...DEVICE_FIELDS, ...historyColumns(TRIPS_TABLE)],
    columns: [
      { key: 'device', label: 'Device' },
      { key: 'start_time', label: 'Start', time: true },
      { key: 'end_time', label: 'End', time: true },
      { key: 'start', label: 'From (lat, lon)' },
      { key: 'end', label: 'To (lat, lon)' },
      { key: 'distance_km', label: 'Distance (km)', sum: true },
      { key: 'duration_s', label: 'Duration (s)', sum: true, seconds: true },
      { key: 'driving_s', label: 'Driving (s)', sum: true, seconds: true },
      { key: 'idle_s', label: 'Idle (s)', sum: true, seconds: true },
      { key: 'max_speed', label: 'Max speed (km/h)', max: true },
      { key: 'avg_speed', label: 'Avg speed (km/h)' },
      { key: 'start_odometer_km', label: 'Odometer start (km)' },
      { key: 'end_odometer_km', label: 'Odometer end (km)' },
      { key: 'in_progress', label: 'In progress' },
    ],
    row: (t, time) => ({
      ...deviceCells(t.device),
      start_time: time(t.start_time),
      end_time: time(t.end_time),
      start_at: t.start_time ?? null,
      end_at: t.end_time ?? null,
      start: coords(t.start_location),
      end: coords(t.end_location),
      distance_km: round(num(t.distance_km), 3),
      duration_s: num(t.duration_s),
      driving_s: num(t.driving_s),
      idle_s: num(t.idle_s),
      max_speed: num(t.max_speed),
      avg_speed: round(num(t.avg_speed), 1),
      start_odometer_km: round(num(t.start_odometer_km), 3),
      end_odometer_km: round(num(t.end_odometer_km), 3),
      in_progress: t.in_progress ? 'yes' : 'no',
    }),
  },
  stops: {
    collection: 'stops',
    timeField: 'start_time',
    fields: [...DEVICE_FIELDS, ...historyColumns(STOPS_TABLE)],
    columns: [
      { key: 'device', label: 'Device' },
      { key: 'start_time', label: 'Start', time: true },
      { key: 'end_time', label: 'End', time: true },
      { key: 'location', label: 'Location (lat, lon)' },
      { key: 'duration_s', label: 'Duration (s)', sum: true, seconds: true },
      { key: 'engine_on_s', label: 'Engine on (s)', sum: true, seconds: true },
    ],
    row: (s, time) => ({
      ...deviceCells(s.device),
      start_time: time(s.start_time),
      end_time: time(s.end_time),
      location: coords(s.location),
      ...lonLat(s.location),
      duration_s: num(s.duration_s),
      engine_on_s: num(s.engine_on_s),
    }),
  },
  events: {
    ...EVENT_SOURCE,
    columns: [
      { key: 'device', label: 'Device' },
      { key: 'time', label: 'Time', time: true },
      { key: 'type', label: 'Event' },
      { key: 'location', label: 'Location (lat, lon)' },
      { key: 'details', label: 'Details' },
    ],
    row: (e, time) => ({
      ...deviceCells(e.device),
      time: time(e.time),
      type: e.type,
      location: coords(e.location),
      ...lonLat(e.location),
      details: e.attributes && Object.keys(e.attributes).length > 0 ? JSON.stringify(e.attributes) : '',
    }),
  },
  days: {
    collection: 'daily_summaries',
    timeField: 'day',
    fields: [...DEVICE_FIELDS, ...historyColumns(DAILY_SUMMARIES_TABLE)],
    columns: [
      { key: 'device', label: 'Device' },
      { key: 'day', label: 'Day' },
      { key: 'distance_km', label: 'Distance (km)', sum: true },
      { key: 'driving_s', label: 'Driving (s)', sum: true, seconds: true },
      { key: 'idle_s', label: 'Idle (s)', sum: true, seconds: true },
      { key: 'engine_s', label: 'Engine (s)', sum: true, seconds: true },
      { key: 'trips', label: 'Trips', sum: true },
      { key: 'stops', label: 'Stops', sum: true },
      { key: 'max_speed', label: 'Max speed (km/h)', max: true },
      { key: 'first_fix', label: 'First fix', time: true },
      { key: 'last_fix', label: 'Last fix', time: true },
    ],
    row: (d, time) => ({
      ...deviceCells(d.device),
      day: typeof d.day === 'string' ? d.day.slice(0, 10) : d.day,
      distance_km: round(num(d.distance_km), 3),
      driving_s: num(d.driving_s),
      idle_s: num(d.idle_s),
      engine_s: num(d.engine_s),
      trips: num(d.trips),
      stops: num(d.stops),
      max_speed: num(d.max_speed),
      first_fix: time(d.first_fix),
      last_fix: time(d.last_fix),
    }),
  },
  visits: {
    ...EVENT_SOURCE,
    columns: [
      { key: 'device', label: 'Device' },
      { key: 'geofence', label: 'Geofence' },
      { key: 'entered', label: 'Entered', time: true },
      { key: 'exited', label: 'Exited', time: true },
      { key: 'duration_s', label: 'Duration (s)', sum: true, seconds: true },
    ],
    row: (v, time) => ({
      ...deviceCells(v.device),
      geofence: v.geofence,
      entered: time(v.entered),
      exited: time(v.exited),
      duration_s: v.duration_s,
      ...lonLat(v.location),
    }),
    collect: (items, q) => geofenceVisits(items, q),
  },
};

/** How far before the range a visit's entry is looked for (a visit that began earlier). */
export const VISIT_LOOKBACK_DAYS = 31;

/**
 * Geofence visits: per device and geofence (the event key), each `geofence_enter` paired with the
 * next `geofence_exit`. Visits overlapping [from, to] are kept; one still inside has no exit and
 * no duration, an exit whose entry was not read (before the lookback) has no entry time. Items are
 * events as the report reads them; the result is one item per visit (id = the entry's id, else the
 * exit's), ordered by device, entry time, geofence.
 */
export function geofenceVisits(events: Item[], range: { from: string; to: string }): Item[] {
  const from = Date.parse(range.from);
  const to = Date.parse(range.to);
  const byFence = new Map<string, Item[]>();
  for (const e of events) {
    if (e.type !== GEOFENCE_EVENT_TYPES.enter && e.type !== GEOFENCE_EVENT_TYPES.exit) continue;
    const k = `${e.device?.id ?? e.device}|${e.key}`;
    byFence.set(k, [...(byFence.get(k) ?? []), e]);
  }
  const visits: Item[] = [];
  for (const list of byFence.values()) {
    list.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
    let open: Item | null = null;
    const close = (enter: Item | null, exit: Item | null) => {
      const e = (enter ?? exit)!;
      const entered = enter ? Date.parse(enter.time) : null;
      const exited = exit ? Date.parse(exit.time) : null;
      if ((exited !== null && exited < from) || (entered !== null && entered > to)) return;
      visits.push({
        id: e.id,
        device: e.device,
        geofence: String(e.attributes?.geofence_name ?? `#${e.key}`),
        entered: enter?.time ?? null,
        exited: exit?.time ?? null,
        duration_s: entered !== null && exited !== null ? Math.round((exited - entered) / 1000) : null,
        location: e.location,
      });
    };
    for (const e of list) {
      if (e.type === GEOFENCE_EVENT_TYPES.enter) {
        if (open) close(open, null); // two entries in a row: the first never saw its exit
        open = e;
      } else {
        close(open, e);
        open = null;
      }
    }
    if (open) close(open, null);
  }
  const deviceOf = (v: Item) => Number(v.device?.id ?? v.device);
  return visits.sort(
    (a, b) =>
      deviceOf(a) - deviceOf(b) ||
      Date.parse(a.entered ?? a.exited) - Date.parse(b.entered ?? b.exited) ||
      a.geofence.localeCompare(b.geofence),
  );
}

export class ReportQueryError extends Error {
  override name = 'ReportQueryError';
}

export interface ReportQuery {
  kind: ReportKind;
  /** Empty = all devices. */
  devices: (number | string)[];
  from: string;
  to: string;
  limit: number;
  /** IANA zone the times are written in (the viewer's); default UTC. */
  timeZone: string;
}

export const MAX_REPORT_ROWS = 10_000;

/** Parses `kind`, `devices` (comma list or "all"), `from`, `to` (ISO or epoch ms), `limit`, `tz`. */
export function parseReportQuery(q: Record<string, unknown>): ReportQuery {
  const kind = String(q.kind ?? '');
  if (!(REPORT_KINDS as readonly string[]).includes(kind)) {
    throw new ReportQueryError(`kind must be one of ${REPORT_KINDS.join(', ')}`);
  }
  const instant = (v: unknown, name: string) => {
    const s = String(v ?? '');
    const ms = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
    if (!s || Number.isNaN(ms)) throw new ReportQueryError(`${name} must be a time (ISO 8601 or epoch ms)`);
    return new Date(ms).toISOString();
  };
  const from = instant(q.from, 'from');
  const to = instant(q.to, 'to');
  if (to < from) throw new ReportQueryError('to is before from');
  const list = String(q.devices ?? 'all').trim();
  const devices = list === '' || list === 'all' ? [] : list.split(',').map((d) => d.trim());
  if (devices.some((d) => !/^\d+$/.test(d)))
    throw new ReportQueryError('devices must be device ids separated by commas, or "all"');
  const limit = q.limit === undefined ? MAX_REPORT_ROWS : Number(q.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_REPORT_ROWS) {
    throw new ReportQueryError(`limit must be 1-${MAX_REPORT_ROWS}`);
  }
  const timeZone = q.tz === undefined || q.tz === '' ? 'UTC' : String(q.tz);
  if (!isTimeZone(timeZone)) throw new ReportQueryError('tz must be an IANA time zone such as Europe/Vilnius');
  return { kind: kind as ReportKind, devices: devices.map(Number), from, to, limit, timeZone };
}

/** The Directus query (fields, filter, sort, limit) of a report. */
export function itemsQuery(q: ReportQuery) {
  const spec = REPORTS[q.kind];
  const lookback = new Date(Date.parse(q.from) - VISIT_LOOKBACK_DAYS * 86_400_000).toISOString();
  const range =
    q.kind === 'days'
      ? { _between: [q.from.slice(0, 10), q.to.slice(0, 10)] }
      : { _gte: q.kind === 'visits' ? lookback : q.from, _lte: q.to };
  const and: unknown[] = [{ [spec.timeField]: range }];
  if (q.devices.length > 0) and.push({ device: { _in: q.devices } });
  if (q.kind === 'visits') and.push({ type: { _in: [GEOFENCE_EVENT_TYPES.enter, GEOFENCE_EVENT_TYPES.exit] } });
  return {
    fields: spec.fields,
    filter: { _and: and },
    sort: ['device', spec.timeField, ...(q.kind === 'events' ? ['type'] : [])],
    limit: q.limit + 1,
  };
}

/** The report of what `itemsQuery(q)` read (at most `q.limit` items are used; more = truncated). */
export function buildReport(q: ReportQuery, items: Item[]): Report {
  const { kind, limit, timeZone } = q;
  const spec = REPORTS[kind];
  const used = items.slice(0, limit);
  const time = (v: unknown) => (typeof v === 'string' ? formatTimeIn(v, timeZone) : '');
  const rows = (spec.collect ? spec.collect(used, q) : used).map((it) => ({ id: it.id, ...spec.row(it, time) }) as Row);
  const totals: Record<string, Cell> = { device: `${rows.length} ${kind}` };
  for (const c of spec.columns) {
    const values = rows.map((r) => r[c.key]).filter((v): v is number => typeof v === 'number');
    if (c.sum) totals[c.key] = Number(values.reduce((a, b) => a + b, 0).toFixed(3));
    if (c.max) totals[c.key] = values.length > 0 ? Math.max(...values) : null;
  }
  const columns = spec.columns.map((c) => (c.time ? { ...c, label: `${c.label} (${timeZone})` } : c));
  return { kind, timeZone, columns, rows, totals, truncated: items.length > limit };
}

/** The report as CSV (RFC 4180): a header of column labels, then one line per row shown. */
export function reportCsv(report: Report): string {
  const cell = (v: Cell | undefined) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [report.columns.map((c) => cell(c.label)).join(',')];
  for (const r of report.rows) lines.push(report.columns.map((c) => cell(r[c.key])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
