/**
 * History names shared with the extension bundle (imported as `@fleet/daemon/history`): the
 * collections only the history worker writes, the fields administrators own, the settings
 * schema they are validated with, and the table that asks the worker for a recomputation.
 */

export {
  DEFAULT_SETTINGS,
  type DetectionSettings,
  DetectionSettingsSchema,
  MOTION_SOURCES,
  SETTING_COLUMNS,
  SettingsOverrideSchema,
} from './settings.js';
export {
  DAILY_SUMMARIES_TABLE,
  EVENTS_TABLE,
  type HistoryTable,
  historyColumns,
  STOPS_TABLE,
  TRIPS_TABLE,
} from './tables.js';
export { EVENT_TYPES } from './types.js';

/** Written only by the history worker; the API refuses writes to them. */
export const DERIVED_COLLECTIONS = ['trips', 'stops', 'events', 'daily_summaries'] as const;
export const FLEET_SETTINGS_COLLECTION = 'fleet_settings';
/** devices fields the worker maintains (never written through the API). */
export const ACCUMULATOR_FIELDS = ['odometer_km', 'engine_hours'] as const;
/** devices fields only Administrators may change; a change asks for a recomputation. */
export const ADMIN_HISTORY_FIELDS = ['odometer_correction_km', 'engine_hours_correction', 'history_settings'] as const;
/** Plain table of "recompute this device from this time" marks (see directus/sql/after-schema.sql). */
export const HISTORY_DIRTY_TABLE = 'history_dirty';
