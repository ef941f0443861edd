/**
 * What the Reports panel shows of the endpoint's report (pure, unit-tested): the tabs, how a cell
 * reads, and what a click on a row asks of the fleet map.
 */
import { formatHms } from '../shared/format/index.js';
import type { Cell, Column, Report, ReportKind, Row } from '../shared/history/report.js';
import type { MapRequest } from '../shared/selection/index.js';

export const TABS = [
  { kind: 'trips', label: 'Trips' },
  { kind: 'stops', label: 'Stops' },
  { kind: 'events', label: 'Events' },
  { kind: 'days', label: 'Daily summary' },
  { kind: 'visits', label: 'Geofence visits' },
] as const satisfies readonly { kind: ReportKind; label: string }[];
export type TabKind = ReportKind;

/** The endpoint's report (`GET /fleet-history/report`), as JSON: the types the endpoint builds it with. */
export type ReportColumn = Pick<Column, 'key' | 'label' | 'seconds'>;
export type ReportCell = Cell;
export type ReportRow = Row;
export type ReportView = Report;

/** The column heading: durations are shown as h:mm:ss, so their "(s)" goes. */
export function heading(c: ReportColumn): string {
  return c.seconds ? c.label.replace(/ \(s\)$/, '') : c.label;
}

/** A cell as the table shows it (the files keep the plain values). */
export function cellText(c: ReportColumn, v: ReportCell | undefined): string {
  if (v === null || v === undefined) return '';
  if (c.seconds && typeof v === 'number') return formatHms(v);
  return String(v);
}

/**
 * What a click on a row asks of the map: a trip's track (its whole seconds, so the first and the
 * last fix are inside), or the point of a stop, event or visit. Null: nothing to show.
 */
export function rowRequest(kind: TabKind, row: ReportRow): MapRequest | null {
  if (kind === 'trips' && typeof row.start_at === 'string' && row.device_id !== null) {
    const end = typeof row.end_at === 'string' ? Date.parse(row.end_at) : Date.now();
    return {
      kind: 'track',
      device: {
        id: row.device_id as number,
        name: (row.device_name as string | null) ?? null,
        imei: String(row.device_imei ?? ''),
      },
      fromMs: Math.floor(Date.parse(row.start_at) / 1000) * 1000,
      toMs: Math.ceil(end / 1000) * 1000,
    };
  }
  if (typeof row.lon === 'number' && typeof row.lat === 'number') {
    return { kind: 'centre', lng: row.lon, lat: row.lat, zoom: 16 };
  }
  return null;
}
