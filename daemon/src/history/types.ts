/**
 * Shapes of the history derivation: what it reads (positions of one device) and what it produces
 * (trips, stops, events, daily summaries, accumulator totals). Times are epoch milliseconds.
 */

/** positions.id as the database returns it (a uuid, so a string; plain numbers in hand-made inputs). */
export type PositionId = string | number;

export interface HistoryPosition {
  id: PositionId | null;
  /** Fix time, epoch ms. */
  time: number;
  lat: number;
  lon: number;
  /** km/h */
  speed: number;
  eventIoId: number;
  /** Named IO values (positions.attributes). */
  attributes: Readonly<Record<string, unknown>>;
  /** positions.flags; empty for a good record. */
  flags: readonly string[];
}

export interface LatLon {
  lat: number;
  lon: number;
}

export interface DerivedTrip {
  startTime: number;
  endTime: number;
  start: LatLon;
  end: LatLon;
  startPosition: PositionId | null;
  endPosition: PositionId | null;
  /** Decimetres (integers, so sums are exact and do not depend on the order of addition). */
  distanceDm: number;
  durationS: number;
  drivingS: number;
  idleS: number;
  maxSpeed: number;
  avgSpeed: number;
  startOdometerKm: number;
  endOdometerKm: number;
  /** No stop confirmed after it yet: its end moves as data arrives. */
  inProgress: boolean;
}

export interface DerivedStop {
  startTime: number;
  /** null while still stopped. */
  endTime: number | null;
  location: LatLon;
  position: PositionId | null;
  durationS: number;
  engineOnS: number;
}

/** The built-in event types (event derivers may add others, e.g. geofence_enter). */
export const EVENT_TYPES = [
  'ignition_on',
  'ignition_off',
  'trip_start',
  'trip_end',
  'overspeed_start',
  'overspeed_end',
  'device_online',
  'device_offline',
  'crash',
  'towing',
  'jamming',
  'unplug',
  'idling',
  'harsh_acceleration',
  'harsh_braking',
  'harsh_cornering',
  'power_low',
  'power_lost',
  'power_restored',
  'driver_change',
  'alarm',
] as const;
export type BuiltInEventType = (typeof EVENT_TYPES)[number];

export interface DerivedEvent {
  time: number;
  type: string;
  /** Discriminator within (device, type, time): '' for built-in events, e.g. a geofence id otherwise. */
  key: string;
  location: LatLon | null;
  attributes: Record<string, unknown>;
  position: PositionId | null;
}

export interface DerivedDay {
  /** YYYY-MM-DD in the device's time zone. */
  day: string;
  distanceDm: number;
  drivingS: number;
  idleS: number;
  engineS: number;
  trips: number;
  stops: number;
  maxSpeed: number | null;
  firstFix: number | null;
  lastFix: number | null;
}

/** What the window does not contain but its results depend on (read from stored rows). */
export interface PriorTotals {
  /** Distance of every day before the window's first day (sum of daily summaries). */
  distanceDm: number;
  /** Engine time of every day before the window's first day, ms. */
  engineMs: number;
  /** Trips and stops that start on the window's first day but before `from`. */
  tripsBefore: number;
  stopsBefore: number;
}

export const NO_PRIOR: PriorTotals = Object.freeze({ distanceDm: 0, engineMs: 0, tripsBefore: 0, stopsBefore: 0 });

export interface DerivedWindow {
  trips: DerivedTrip[];
  stops: DerivedStop[];
  events: DerivedEvent[];
  days: DerivedDay[];
  /** Accumulators at the end of the data. */
  totals: {
    distanceDm: number;
    engineMs: number;
    /** The device's own total odometer (IO 16) at its latest good fix, km; null if it sends none. */
    ioOdometerKm: number | null;
    /** The device's own ignition-on counter (IO 449) at its latest record, hours; null if none. */
    ioEngineHours: number | null;
  };
}
