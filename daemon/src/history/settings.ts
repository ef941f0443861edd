/**
 * Detection settings: fleet defaults (the `fleet_settings` singleton) overridden per device
 * (`devices.history_settings`, a partial object). One schema for the daemon, the derive CLI and the
 * extension hook that validates what an administrator saves.
 */
import { IANAZone } from 'luxon';
import { z } from 'zod';

/**
 * Zones found valid, remembered: luxon checks one by constructing an Intl.DateTimeFormat, which the
 * worker would otherwise pay for every batch it reads the fleet's settings (a few ms each).
 */
const validZones = new Set<string>();
function isValidZone(zone: string): boolean {
  if (validZones.has(zone)) return true;
  if (!IANAZone.isValidZone(zone)) return false;
  validZones.add(zone);
  return true;
}

export const MOTION_SOURCES = ['movement', 'ignition', 'speed'] as const;
export type MotionSource = (typeof MOTION_SOURCES)[number];

const seconds = z
  .number()
  .int()
  .min(0)
  .max(7 * 86_400);

export const DetectionSettingsSchema = z.object({
  /**
   * What says "moving": IO 240 movement (falls back to the speed threshold on records without it),
   * IO 239 ignition, or speed ≥ `speedThresholdKmh`.
   */
  motionSource: z.enum(MOTION_SOURCES),
  speedThresholdKmh: z.number().min(0).max(300),
  minTripDurationS: seconds,
  minTripDistanceM: z.number().min(0).max(1_000_000),
  minStopDurationS: seconds,
  /** Two fixes further apart than this split a trip: the time between them counts as stopped. */
  maxGapS: seconds.min(1),
  /** null: no overspeed events. */
  overspeedLimitKmh: z.number().min(1).max(500).nullable(),
  overspeedMinDurationS: seconds,
  /** No record for this long → device_offline (never shorter than maxGapS). */
  offlineAfterS: seconds.min(1),
  /** External voltage below this → power_low (only for devices reporting IO 66). */
  lowPowerV: z.number().min(0).max(100),
  /** IANA zone of daily summaries. */
  timeZone: z.string().refine(isValidZone, 'an IANA time zone such as Europe/Vilnius'),
});
export type DetectionSettings = z.infer<typeof DetectionSettingsSchema>;

export const DEFAULT_SETTINGS: DetectionSettings = Object.freeze({
  motionSource: 'movement',
  speedThresholdKmh: 5,
  minTripDurationS: 60,
  minTripDistanceM: 100,
  minStopDurationS: 180,
  maxGapS: 300,
  overspeedLimitKmh: 90,
  overspeedMinDurationS: 10,
  offlineAfterS: 1800,
  lowPowerV: 11.5,
  timeZone: 'UTC',
});

/** A device's override: any subset of the settings. */
export const SettingsOverrideSchema = DetectionSettingsSchema.partial().strict();
export type SettingsOverride = z.infer<typeof SettingsOverrideSchema>;

/** Column names of `fleet_settings` ↔ setting keys (snake case in the database, as Directus shows them). */
export const SETTING_COLUMNS = {
  motionSource: 'motion_source',
  speedThresholdKmh: 'speed_threshold_kmh',
  minTripDurationS: 'min_trip_duration_s',
  minTripDistanceM: 'min_trip_distance_m',
  minStopDurationS: 'min_stop_duration_s',
  maxGapS: 'max_gap_s',
  overspeedLimitKmh: 'overspeed_limit_kmh',
  overspeedMinDurationS: 'overspeed_min_duration_s',
  offlineAfterS: 'offline_after_s',
  lowPowerV: 'low_power_v',
  timeZone: 'time_zone',
} as const satisfies Record<keyof DetectionSettings, string>;

/** Fleet defaults from a `fleet_settings` row (missing or null columns keep the built-in default). */
export function fleetSettingsFromRow(row: Record<string, unknown> | undefined): DetectionSettings {
  const picked: Record<string, unknown> = {};
  if (row) {
    for (const [key, column] of Object.entries(SETTING_COLUMNS)) {
      const v = row[column];
      if (v === null || v === undefined) continue;
      // numeric columns come back from pg as strings
      picked[key] = typeof v === 'string' && key !== 'motionSource' && key !== 'timeZone' ? Number(v) : v;
    }
    // overspeed_limit_kmh null means "off" only when the column says so explicitly
    if (row.overspeed_limit_kmh === null && 'overspeed_limit_kmh' in row) picked.overspeedLimitKmh = null;
  }
  return normaliseSettings(DetectionSettingsSchema.parse({ ...DEFAULT_SETTINGS, ...picked }));
}

/** Fleet defaults overridden by a device's own values; a bad override is an error naming the field. */
export function effectiveSettings(fleet: DetectionSettings, override: unknown): DetectionSettings {
  if (override === null || override === undefined) return fleet;
  const parsed = SettingsOverrideSchema.parse(typeof override === 'string' ? JSON.parse(override) : override);
  return normaliseSettings({ ...fleet, ...parsed });
}

/** Keeps the rules the derivation relies on: a device is never "offline" inside a trip's gap rule. */
export function normaliseSettings(s: DetectionSettings): DetectionSettings {
  return s.offlineAfterS >= s.maxGapS ? s : { ...s, offlineAfterS: s.maxGapS };
}
