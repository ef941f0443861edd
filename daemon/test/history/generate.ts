/**
 * Random but plausible histories of one device for the derivation's property tests: drives,
 * idling with the engine on, parking, coverage gaps, a few flagged records and alarm records,
 * possibly around midnight and across time zones.
 */
import fc from 'fast-check';
import type { HistoryPosition } from '../../src/history/types.js';
import { destination } from '../../src/simulator/track.js';

export interface Phase {
  kind: 'drive' | 'idle' | 'park' | 'gap';
  durationS: number;
  sampleS: number;
  speed: number;
  heading: number;
}

export const phaseArb: fc.Arbitrary<Phase> = fc.record({
  kind: fc.constantFrom('drive', 'drive', 'idle', 'park', 'gap'),
  durationS: fc.integer({ min: 5, max: 1500 }),
  sampleS: fc.integer({ min: 1, max: 120 }),
  speed: fc.integer({ min: 3, max: 130 }),
  heading: fc.integer({ min: 0, max: 359 }),
}) as fc.Arbitrary<Phase>;

export interface HistorySpec {
  start: number;
  phases: Phase[];
  odometerIo: boolean;
  /** Per-record chance (‰) of a flag or an alarm record. */
  noiseSeed: number;
}

export const historyArb: fc.Arbitrary<HistorySpec> = fc.record({
  // Around midnight UTC and Vilnius/Santiago local midnights, so days split intervals.
  start: fc.integer({ min: Date.UTC(2026, 2, 28, 20), max: Date.UTC(2026, 2, 29, 4) }),
  phases: fc.array(phaseArb, { minLength: 1, maxLength: 12 }),
  odometerIo: fc.boolean(),
  noiseSeed: fc.integer({ min: 1, max: 2 ** 30 }),
});

/** A tiny deterministic generator (the spec carries its seed, so shrinking stays meaningful). */
export function lcg(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

export function buildHistory(spec: HistorySpec, maxRecords = 400): HistoryPosition[] {
  const rnd = lcg(spec.noiseSeed);
  const out: HistoryPosition[] = [];
  let t = spec.start;
  let here = { lat: 54.6872, lon: 25.2797 };
  let odo = 1_000_000;
  for (const ph of spec.phases) {
    const end = t + ph.durationS * 1000;
    if (ph.kind === 'gap') {
      t = end;
      continue;
    }
    const step = (ph.kind === 'park' ? Math.max(ph.sampleS, 60) : ph.sampleS) * 1000;
    for (; t < end && out.length < maxRecords; t += step) {
      const driving = ph.kind === 'drive';
      if (driving) {
        const metres = (ph.speed / 3.6) * (step / 1000);
        here = destination(here, ph.heading, metres);
        odo += Math.round(metres);
      }
      const attributes: Record<string, unknown> = {
        ignition: ph.kind !== 'park',
        movement: driving,
        externalVoltage: ph.kind === 'park' ? 12.4 : 14.1,
      };
      if (spec.odometerIo) attributes.totalOdometer = odo;
      const r = rnd();
      const flags: string[] = r < 0.03 ? ['no_fix'] : r < 0.04 ? ['jump'] : r < 0.045 ? ['future'] : [];
      let eventIoId = 0;
      if (r > 0.98) {
        eventIoId = 253;
        attributes.greenDrivingType = 1 + Math.floor(rnd() * 3);
        attributes.greenDrivingValue = 20;
      }
      out.push({
        id: out.length + 1,
        time: t,
        lat: flags[0] === 'no_fix' ? 0 : here.lat,
        lon: flags[0] === 'no_fix' ? 0 : here.lon,
        speed: driving ? Math.max(0, ph.speed + Math.round((rnd() - 0.5) * 10)) : 0,
        eventIoId,
        attributes,
        flags,
      });
    }
    t = Math.max(t, end);
  }
  return out;
}

/** The records cut into batches and delivered in a random order (a device flushing its buffer late). */
export function deliveries(history: readonly HistoryPosition[], seed: number, maxBatch: number): HistoryPosition[][] {
  const rnd = lcg(seed);
  const batches: HistoryPosition[][] = [];
  for (let i = 0; i < history.length; ) {
    const n = 1 + Math.floor(rnd() * maxBatch);
    batches.push(history.slice(i, i + n));
    i += n;
  }
  for (let i = batches.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [batches[i], batches[j]] = [batches[j]!, batches[i]!];
  }
  return batches;
}
