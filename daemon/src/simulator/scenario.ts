/**
 * Scripted drives with a known ground truth, in simulated time (fix times chosen by the script,
 * not the wall clock), for tests and demos of trips, stops and events: the records a real FMB
 * would log, with ignition 239, movement 240, speed 24, external voltage 66 and total odometer 16.
 */
import type { AvlRecord, EncodableIoList } from '../protocol/index.js';
import { destination, IO, type LatLon } from './track.js';

export interface ScenarioPhase {
  kind: 'drive' | 'idle' | 'park';
  seconds: number;
  /** km/h while driving. */
  speed?: number;
}

export interface Scenario {
  records: AvlRecord[];
  /** Fix time where each phase starts, and the time after the last record. */
  phaseStarts: number[];
  end: number;
}

/** The ground-truth drive: 10 min (with 30 s at 110 km/h), idle 5 min engine on, park 15 min, drive 5 min. */
export const GROUND_TRUTH_PHASES: readonly ScenarioPhase[] = [
  { kind: 'drive', seconds: 300, speed: 60 },
  { kind: 'drive', seconds: 30, speed: 110 },
  { kind: 'drive', seconds: 270, speed: 60 },
  { kind: 'idle', seconds: 300 },
  { kind: 'park', seconds: 900 },
  { kind: 'drive', seconds: 300, speed: 60 },
];

/**
 * One record every `stepS` seconds from `start` (every 60 s while parked, as an FMB logs when
 * stopped), heading north-east from `origin`. An ignition change is an event record (event IO 239).
 */
export function scenarioRecords(
  phases: readonly ScenarioPhase[],
  start: number,
  origin: LatLon = { lat: 54.6872, lon: 25.2797 },
  stepS = 5,
  odometerM = 1_000_000,
): Scenario {
  const records: AvlRecord[] = [];
  const phaseStarts: number[] = [];
  let t = start;
  let here = origin;
  let odo = odometerM;
  let ignition: boolean | null = null;
  for (const ph of phases) {
    phaseStarts.push(t);
    const step = (ph.kind === 'park' ? 60 : stepS) * 1000;
    const end = t + ph.seconds * 1000;
    for (; t < end; t += step) {
      const on = ph.kind !== 'park';
      const speed = ph.kind === 'drive' ? (ph.speed ?? 50) : 0;
      const event = ignition !== null && ignition !== on ? IO.ignition : 0;
      ignition = on;
      const io: EncodableIoList = {
        ids: [IO.ignition, IO.movement, IO.speed, IO.externalVoltage, IO.totalOdometer],
        values: [on ? 1 : 0, speed > 0 ? 1 : 0, speed, on ? 14_100 : 12_500, Math.round(odo)],
      };
      records.push({
        timestamp: t,
        priority: event ? 1 : 0,
        longitude: Math.round(here.lon * 1e7) / 1e7,
        latitude: Math.round(here.lat * 1e7) / 1e7,
        altitude: 120,
        angle: speed > 0 ? 45 : 0,
        satellites: 11,
        speed,
        eventIoId: event,
        generationType: null,
        io,
      });
      // Move to where the next record is taken.
      const metres = (speed / 3.6) * (step / 1000);
      if (metres > 0) {
        here = destination(here, 45, metres);
        odo += metres;
      }
    }
  }
  return { records, phaseStarts, end: t };
}
