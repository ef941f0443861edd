/**
 * The derived history collections as the history worker writes them and the extension's reports
 * read them: per table, its natural key (besides `device`) and its other columns. Pure data,
 * exported to the bundle through `@fleet/daemon/history`.
 */

export interface HistoryTable {
  readonly table: string;
  /** Natural key columns besides `device`. */
  readonly key: readonly string[];
  /** Other columns. */
  readonly values: readonly string[];
}

export const TRIPS_TABLE: HistoryTable = {
  table: 'trips',
  key: ['start_time'],
  values: [
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
};

export const STOPS_TABLE: HistoryTable = {
  table: 'stops',
  key: ['start_time'],
  values: ['end_time', 'location', 'duration_s', 'engine_on_s'],
};

export const EVENTS_TABLE: HistoryTable = {
  table: 'events',
  key: ['type', 'time', 'key'],
  values: ['location', 'attributes', 'position'],
};

export const DAILY_SUMMARIES_TABLE: HistoryTable = {
  table: 'daily_summaries',
  key: ['day'],
  values: ['distance_km', 'driving_s', 'idle_s', 'engine_s', 'trips', 'stops', 'max_speed', 'first_fix', 'last_fix'],
};

/** Every column of a history table, key first (without `id` and `device`). */
export function historyColumns(t: HistoryTable): string[] {
  return [...t.key, ...t.values];
}
