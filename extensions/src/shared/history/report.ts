/**
 * The Reports panel's tables: which collection and fields each tab reads, how an item becomes a
 * row of plain values, the totals line, and the same rows as CSV. Pure, shared by the endpoint
 * (which also writes XLSX) and tested without a server, so an export holds exactly the rows the
 * panel shows.
 */

/** An item as Directus's ItemsService returns it (JSON, nested device). */
// biome-ignore lint/suspicious/noExplicitAny: JSON items, read field by field into rows
export type Item = Record<string, any>;

export const REPORT_KINDS = ['trips', 'stops', 'events', 'days'] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

export interface Column {
  key: string;
  label: string;
  /** Summed in the totals line. */
  sum?: boolean;
  /** Maximum in the totals line. */
  max?: boolean;
}

export type Cell = string | number | null;
export type Row = Record<string, Cell> & { id: number | string };

export interface Report {
  kind: ReportKind;
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
  row(item: Item): Omit<Row, 'id'>;
}

const deviceLabel = (d: { name?: string | null; imei?: string } | null | undefined) =>
  d ? (d.name ? `${d.name} (${d.imei ?? ''})` : (d.imei ?? '')) : '';
const num = (v: unknown): number | null => (v === null || v === undefined || v === '' ? null : Number(v));
const coords = (p: { coordinates?: [number, number] } | null | undefined): string =>
  p?.coordinates ? `${p.coordinates[1].toFixed(6)}, ${p.coordinates[0].toFixed(6)}` : '';
/** Times as `2026-11-28 10:00:00Z` (UTC, to the second): the same text in the table and the files. */
export const time = (v: unknown): string =>
  typeof v === 'string' && v !== '' ? `${new Date(v).toISOString().slice(0, 19).replace('T', ' ')}Z` : '';
const round = (v: number | null, digits: number) => (v === null ? null : Number(v.toFixed(digits)));

export const REPORTS: Record<ReportKind, KindSpec> = {
  trips: {
    collection: 'trips',
    timeField: 'start_time',
    fields: [
      'id',
      'device.id',
      'device.name',
      'device.imei',
      'start_time',
      'end_time',
      'start_location',
      'end_location',
      'distance_km',
      'duration_s',
      'driving_s',
      'idle_s',
      'max_speed',
      'avg_speed',
      'start_odometer_km',
      'end_odometer_km',
      'in_progress',
    ],
    columns: [
      { key: 'device', label: 'Device' },
      { key: 'start_time', label: 'Start' },
      { key: 'end_time', label: 'End' },
      { key: 'start', label: 'From (lat, lon)' },
      { key: 'end', label: 'To (lat, lon)' },
      { key: 'distance_km', label: 'Distance (km)', sum: true },
      { key: 'duration_s', label: 'Duration (s)', sum: true },
      { key: 'driving_s', label: 'Driving (s)', sum: true },
      { key: 'idle_s', label: 'Idle (s)', sum: true },
      { key: 'max_speed', label: 'Max speed (km/h)', max: true },
      { key: 'avg_speed', label: 'Avg speed (km/h)' },
      { key: 'start_odometer_km', label: 'Odometer start (km)' },
      { key: 'end_odometer_km', label: 'Odometer end (km)' },
      { key: 'in_progress', label: 'In progress' },
    ],
    row: (t) => ({
      device: deviceLabel(t.device),
      device_id: t.device?.id ?? null,
      start_time: time(t.start_time),
      end_time: time(t.end_time),
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
    fields: [
      'id',
      'device.id',
      'device.name',
      'device.imei',
      'start_time',
      'end_time',
      'location',
      'duration_s',
      'engine_on_s',
    ],
    columns: [
      { key: 'device', label: 'Device' },
      { key: 'start_time', label: 'Start' },
      { key: 'end_time', label: 'End' },
      { key: 'location', label: 'Location (lat, lon)' },
      { key: 'duration_s', label: 'Duration (s)', sum: true },
      { key: 'engine_on_s', label: 'Engine on (s)', sum: true },
    ],
    row: (s) => ({
      device: deviceLabel(s.device),
      device_id: s.device?.id ?? null,
      start_time: time(s.start_time),
      end_time: time(s.end_time),
      location: coords(s.location),
      lon: s.location?.coordinates?.[0] ?? null,
      lat: s.location?.coordinates?.[1] ?? null,
      duration_s: num(s.duration_s),
      engine_on_s: num(s.engine_on_s),
    }),
  },
  events: {
    collection: 'events',
    timeField: 'time',
    fields: ['id', 'device.id', 'device.name', 'device.imei', 'time', 'type', 'key', 'location', 'attributes'],
    columns: [
      { key: 'device', label: 'Device' },
      { key: 'time', label: 'Time' },
      { key: 'type', label: 'Event' },
      { key: 'location', label: 'Location (lat, lon)' },
      { key: 'details', label: 'Details' },
    ],
    row: (e) => ({
      device: deviceLabel(e.device),
      device_id: e.device?.id ?? null,
      time: time(e.time),
      type: e.type,
      location: coords(e.location),
      lon: e.location?.coordinates?.[0] ?? null,
      lat: e.location?.coordinates?.[1] ?? null,
      details: e.attributes && Object.keys(e.attributes).length > 0 ? JSON.stringify(e.attributes) : '',
    }),
  },
  days: {
    collection: 'daily_summaries',
    timeField: 'day',
    fields: [
      'id',
      'device.id',
      'device.name',
      'device.imei',
      'day',
      'distance_km',
      'driving_s',
      'idle_s',
      'engine_s',
      'trips',
      'stops',
      'max_speed',
      'first_fix',
      'last_fix',
    ],
    columns: [
      { key: 'device', label: 'Device' },
      { key: 'day', label: 'Day' },
      { key: 'distance_km', label: 'Distance (km)', sum: true },
      { key: 'driving_s', label: 'Driving (s)', sum: true },
      { key: 'idle_s', label: 'Idle (s)', sum: true },
      { key: 'engine_s', label: 'Engine (s)', sum: true },
      { key: 'trips', label: 'Trips', sum: true },
      { key: 'stops', label: 'Stops', sum: true },
      { key: 'max_speed', label: 'Max speed (km/h)', max: true },
      { key: 'first_fix', label: 'First fix' },
      { key: 'last_fix', label: 'Last fix' },
    ],
    row: (d) => ({
      device: deviceLabel(d.device),
      device_id: d.device?.id ?? null,
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
};

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
}

export const MAX_REPORT_ROWS = 10_000;

/** Parses `kind`, `devices` (comma list or "all"), `from`, `to` (ISO or epoch ms), `limit`. */
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
  return { kind: kind as ReportKind, devices: devices.map(Number), from, to, limit };
}

/** The Directus query (fields, filter, sort, limit) of a report. */
export function itemsQuery(q: ReportQuery) {
  const spec = REPORTS[q.kind];
  const range =
    q.kind === 'days' ? { _between: [q.from.slice(0, 10), q.to.slice(0, 10)] } : { _gte: q.from, _lte: q.to };
  const filter: Record<string, unknown> = { _and: [{ [spec.timeField]: range }] };
  if (q.devices.length > 0) (filter._and as unknown[]).push({ device: { _in: q.devices } });
  return {
    fields: spec.fields,
    filter,
    sort: ['device', spec.timeField, ...(q.kind === 'events' ? ['type'] : [])],
    limit: q.limit + 1,
  };
}

export function buildReport(kind: ReportKind, items: Item[], limit: number): Report {
  const spec = REPORTS[kind];
  const rows = items.slice(0, limit).map((it) => ({ id: it.id, ...spec.row(it) }) as Row);
  const totals: Record<string, Cell> = { device: `${rows.length} ${kind === 'days' ? 'days' : kind}` };
  for (const c of spec.columns) {
    const values = rows.map((r) => r[c.key]).filter((v): v is number => typeof v === 'number');
    if (c.sum) totals[c.key] = Number(values.reduce((a, b) => a + b, 0).toFixed(3));
    if (c.max) totals[c.key] = values.length > 0 ? Math.max(...values) : null;
  }
  return { kind, columns: spec.columns, rows, totals, truncated: items.length > limit };
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
