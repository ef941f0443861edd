/**
 * Plausible vehicle tracks and IO for one simulated device: drive along slowly changing headings at
 * 0-120 km/h, stop now and then with the ignition off, and report IO consistent with that motion
 * (ignition 239, movement 240, speed 24, external/battery voltage 66/67, GSM signal 21, odometers
 * 16/199, satellites, DOP, digital outputs 179/180).
 *
 * Motion advances by the real time between fix timestamps, so implied speeds are always plausible;
 * decisions (turns, stops, speed targets) come from a seeded generator drawing the same number of
 * values per record, so a seed reproduces the same drive. Inject `now` for fully repeatable output.
 * The state is a handful of numbers: thousands of devices per process cost little memory.
 */
import type { AvlRecord, EncodableIoList } from '../protocol/index.js';
import { Rng } from './rng.js';

export interface LatLon {
  lat: number;
  lon: number;
}

/** Start areas; a device picks one (seeded) unless a centre is given. */
export const CITIES: ReadonlyArray<LatLon & { name: string }> = [
  { name: 'Vilnius', lat: 54.6872, lon: 25.2797 },
  { name: 'Berlin', lat: 52.52, lon: 13.405 },
  { name: 'Paris', lat: 48.8566, lon: 2.3522 },
  { name: 'Madrid', lat: 40.4168, lon: -3.7038 },
  { name: 'Warsaw', lat: 52.2297, lon: 21.0122 },
  { name: 'Amsterdam', lat: 52.3676, lon: 4.9041 },
  { name: 'Prague', lat: 50.0755, lon: 14.4378 },
  { name: 'Santiago', lat: -33.4489, lon: -70.6693 },
];

const EARTH_RADIUS_M = 6_371_008.8;
const DEG = Math.PI / 180;

/** Point reached from `from` after `distanceM` metres on initial bearing `bearingDeg` (great circle). */
export function destination(from: LatLon, bearingDeg: number, distanceM: number): LatLon {
  const d = distanceM / EARTH_RADIUS_M;
  const b = bearingDeg * DEG;
  const la1 = from.lat * DEG;
  const lo1 = from.lon * DEG;
  const la2 = Math.asin(Math.sin(la1) * Math.cos(d) + Math.cos(la1) * Math.sin(d) * Math.cos(b));
  const lo2 = lo1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(la1), Math.cos(d) - Math.sin(la1) * Math.sin(la2));
  return { lat: la2 / DEG, lon: ((((lo2 / DEG + 540) % 360) + 360) % 360) - 180 };
}

/** Great-circle distance in metres. */
export function distanceM(a: LatLon, b: LatLon): number {
  const dLat = (b.lat - a.lat) * DEG;
  const dLon = (b.lon - a.lon) * DEG;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * DEG) * Math.cos(b.lat * DEG) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Initial bearing from a to b, degrees 0-360. */
export function bearingDeg(a: LatLon, b: LatLon): number {
  const la1 = a.lat * DEG;
  const la2 = b.lat * DEG;
  const dLon = (b.lon - a.lon) * DEG;
  const y = Math.sin(dLon) * Math.cos(la2);
  const x = Math.cos(la1) * Math.sin(la2) - Math.sin(la1) * Math.cos(la2) * Math.cos(dLon);
  return (Math.atan2(y, x) / DEG + 360) % 360;
}

export interface TrackOptions {
  /** Seed of this device's generator (see `deriveSeed`). */
  seed: number;
  /** Start area; default: one of CITIES picked by the seed. */
  center?: LatLon;
  /** Devices start within this radius of the centre and are steered back beyond 3× of it. */
  radiusKm?: number;
}

/** IO ids the simulator reports (FMB AVL ids). */
export const IO = {
  gsmSignal: 21,
  gnssStatus: 69,
  ignition: 239,
  movement: 240,
  digitalOutput1: 179,
  digitalOutput2: 180,
  speed: 24,
  externalVoltage: 66,
  batteryVoltage: 67,
  pdop: 181,
  hdop: 182,
  totalOdometer: 16,
  tripOdometer: 199,
  gsmOperator: 241,
} as const;

/** IO ids of every record, in this order (shared by all records: treat as read-only). */
const IO_IDS = [
  IO.ignition,
  IO.movement,
  IO.gsmSignal,
  IO.gnssStatus,
  IO.digitalOutput1,
  IO.digitalOutput2,
  IO.speed,
  IO.externalVoltage,
  IO.batteryVoltage,
  IO.pdop,
  IO.hdop,
  IO.totalOdometer,
  IO.tripOdometer,
  IO.gsmOperator,
];
/**
 * Wire widths of IO_IDS (the FMB dictionary sizes), shared by every record: pinning them spares
 * the encoder a dictionary lookup per element, which halves the simulator's encoding cost.
 */
const IO_WIDTHS = [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 4, 4, 4];

/** Motion and IO state of one simulated vehicle. */
export class Track {
  private readonly rng: Rng;
  private readonly home: LatLon;
  private readonly roamM: number;
  lat: number;
  lon: number;
  altitude: number;
  heading: number;
  /** km/h */
  speed = 0;
  private targetSpeed = 50;
  ignition = false;
  /** Remaining ms of the current drive or stop. */
  private phaseLeftMs: number;
  private driving = false;
  /** Remaining ms of a short stop with the engine running (traffic light, junction). */
  private holdMs = 0;
  satellites: number;
  gsm: number;
  /** metres */
  odometer: number;
  tripOdometer = 0;
  externalMv = 12_600;
  batteryMv = 4_050;
  digitalOutput1 = 0;
  digitalOutput2 = 0;
  /** Timestamp of the last generated record (epoch ms); 0 = none yet. */
  lastTimestamp = 0;
  readonly startedAt: number;

  constructor(options: TrackOptions, now = Date.now()) {
    this.rng = new Rng(options.seed);
    const radiusM = (options.radiusKm ?? 5) * 1000;
    const center = options.center ?? CITIES[Math.floor(this.rng.next() * CITIES.length)]!;
    const start = destination(center, this.rng.range(0, 360), radiusM * Math.sqrt(this.rng.next()));
    this.home = center;
    this.roamM = radiusM * 3;
    this.lat = start.lat;
    this.lon = start.lon;
    this.altitude = Math.round(this.rng.range(20, 300));
    this.heading = this.rng.range(0, 360);
    this.satellites = this.rng.int(7, 14);
    this.gsm = this.rng.int(3, 5);
    this.odometer = this.rng.int(5_000_000, 250_000_000);
    // Half the fleet starts parked so the map shows both states at once.
    this.phaseLeftMs = this.rng.range(5_000, 60_000);
    if (this.rng.chance(0.5)) this.startDrive();
    this.startedAt = now;
  }

  private startDrive(): void {
    this.driving = true;
    this.ignition = true;
    this.tripOdometer = 0;
    this.phaseLeftMs = this.rng.range(60_000, 15 * 60_000);
    this.targetSpeed = this.rng.range(20, 120);
  }

  /**
   * Advances the vehicle by `dtMs` and returns the event IO id of the change it caused, if any
   * (239 ignition, 240 movement, 0 periodic). Always draws the same number of random values.
   */
  step(dtMs: number): number {
    const r1 = this.rng.next();
    const r2 = this.rng.next();
    const r3 = this.rng.next();
    const r4 = this.rng.next();
    const dt = Math.max(0, Math.min(dtMs, 600_000)) / 1000;
    const wasMoving = this.speed > 0;
    const wasIgnition = this.ignition;
    this.phaseLeftMs -= dtMs;

    if (this.driving) {
      if (this.holdMs > 0) {
        this.holdMs -= dtMs;
        if (this.holdMs <= 0) this.targetSpeed = 20 + r2 * 60;
      }
      if (this.phaseLeftMs <= 0) this.targetSpeed = 0;
      else if (this.holdMs <= 0 && r4 > 0.997 && this.speed < 60) {
        // Stop at a light / junction with the engine running: movement 240 goes 0 while ignition stays 1.
        this.holdMs = 10_000 + r1 * 40_000;
        this.targetSpeed = 0;
      } else if (this.holdMs <= 0 && r1 < 0.02) this.targetSpeed = 20 + r2 * 100;
      // At most ~3 km/h per second up, ~6 down: plausible for a car.
      const dv = this.targetSpeed - this.speed;
      const maxDv = (dv > 0 ? 3 : 6) * dt;
      this.speed = Math.max(0, Math.min(120, this.speed + Math.max(-maxDv, Math.min(maxDv, dv))));
      // Gentle wander, occasional turn at junction speeds, and a pull back home when far out.
      let turn = (r3 - 0.5) * 6 * dt;
      if (r4 < 0.01 && this.speed < 50) turn += r3 < 0.5 ? -90 : 90;
      const here = { lat: this.lat, lon: this.lon };
      if (distanceM(here, this.home) > this.roamM) {
        const back = bearingDeg(here, this.home);
        const diff = ((back - this.heading + 540) % 360) - 180;
        turn += Math.max(-20 * dt, Math.min(20 * dt, diff));
      }
      this.heading = (this.heading + turn + 360) % 360;
      const metres = (this.speed / 3.6) * dt;
      if (metres > 0) {
        const next = destination(here, this.heading, metres);
        this.lat = next.lat;
        this.lon = next.lon;
        this.odometer += metres;
        this.tripOdometer += metres;
        this.altitude = Math.max(-10, Math.min(2000, this.altitude + (r2 - 0.5) * 0.02 * metres));
      }
      if (this.phaseLeftMs <= 0 && this.speed === 0) {
        this.driving = false;
        this.ignition = false;
        this.phaseLeftMs = 5_000 + r1 * 120_000;
      }
    } else if (this.phaseLeftMs <= 0) {
      this.startDrive();
    }

    // Alternator voltage with the engine on, resting battery voltage with it off.
    const targetMv = this.ignition ? 13_900 + r2 * 500 : 12_350 + r2 * 350;
    this.externalMv += (targetMv - this.externalMv) * Math.min(1, dt / 5);
    this.batteryMv = Math.max(3_700, Math.min(4_200, this.batteryMv + (this.ignition ? 2 : -1) * dt * r4));
    if (r1 > 0.995) this.gsm = Math.max(1, Math.min(5, this.gsm + (r2 < 0.5 ? -1 : 1)));
    if (r3 > 0.99) this.satellites = Math.max(4, Math.min(18, this.satellites + (r4 < 0.5 ? -1 : 1)));

    if (wasIgnition !== this.ignition) return IO.ignition;
    if (wasMoving !== this.speed > 0) return IO.movement;
    return 0;
  }

  /** Builds the next record at fix time `timestamp` (must increase; see `nextRecords`). */
  record(timestamp: number): AvlRecord {
    const dtMs = this.lastTimestamp === 0 ? 1000 : timestamp - this.lastTimestamp;
    this.lastTimestamp = timestamp;
    const eventIoId = this.step(dtMs);
    const speed = Math.round(this.speed);
    const moving = speed > 0 ? 1 : 0;
    const hdop = 6 + Math.max(0, 14 - this.satellites);
    const io: EncodableIoList = {
      ids: IO_IDS,
      widths: IO_WIDTHS,
      values: [
        this.ignition ? 1 : 0,
        moving,
        this.gsm,
        1,
        this.digitalOutput1,
        this.digitalOutput2,
        speed,
        Math.round(this.externalMv),
        Math.round(this.batteryMv),
        hdop + 3,
        hdop,
        Math.round(this.odometer),
        Math.round(this.tripOdometer),
        24602,
      ],
    };
    return {
      timestamp,
      priority: eventIoId === 0 ? 0 : 1,
      longitude: Math.round(this.lon * 1e7) / 1e7,
      latitude: Math.round(this.lat * 1e7) / 1e7,
      altitude: Math.round(this.altitude),
      angle: moving ? Math.round(this.heading) % 360 : 0,
      satellites: this.satellites,
      speed,
      eventIoId,
      generationType: null,
      io,
    };
  }

  /**
   * `n` records with unique, increasing fix times ending at `now`, spread over the time since the
   * previous record (what a device logging periodically and sending in batches would hold).
   */
  nextRecords(n: number, now: number): AvlRecord[] {
    const out: AvlRecord[] = [];
    const last = this.lastTimestamp === 0 ? now - n * 1000 : this.lastTimestamp;
    const end = Math.max(now, last + n);
    for (let i = 1; i <= n; i++) {
      const ts = Math.max(this.lastTimestamp + 1, last + Math.floor(((end - last) * i) / n));
      out.push(this.record(ts));
    }
    return out;
  }
}
