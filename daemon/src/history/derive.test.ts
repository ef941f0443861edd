import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildHistory, deliveries, historyArb } from '../../test/history/generate.js';
import { MemoryHistory } from '../../test/history/memory-store.js';
import { deriveWindow, ownsEvent, resetPoint } from './derive.js';
import { DEFAULT_SETTINGS, type DetectionSettings, effectiveSettings } from './settings.js';
import { type HistoryPosition, NO_PRIOR } from './types.js';

const T0 = Date.UTC(2026, 5, 1, 8, 0, 0);
const s = (over: Partial<DetectionSettings> = {}): DetectionSettings => ({ ...DEFAULT_SETTINGS, ...over });

/** 1 Hz records: `drive` seconds at `speed` km/h northwards, then the phases that follow. */
function scenario(
  phases: { kind: 'drive' | 'idle' | 'park'; seconds: number; speed?: number }[],
  stepS = 1,
): HistoryPosition[] {
  const out: HistoryPosition[] = [];
  let t = T0;
  let lat = 54.6;
  for (const ph of phases) {
    for (let i = 0; i < ph.seconds; i += stepS) {
      const speed = ph.kind === 'drive' ? (ph.speed ?? 50) : 0;
      lat += (speed / 3.6) * stepS * (1 / 111_195);
      out.push({
        id: out.length + 1,
        time: t,
        lat,
        lon: 25.2,
        speed,
        eventIoId: 0,
        attributes: { ignition: ph.kind !== 'park', movement: ph.kind === 'drive' },
        flags: [],
      });
      t += stepS * 1000;
    }
  }
  return out;
}

const derive = (positions: HistoryPosition[], settings = s()) =>
  deriveWindow({ from: null, positions, settings, prior: NO_PRIOR });

describe('deriveWindow', () => {
  it('drive, idle with the engine on, park, drive: two trips, one stop with its idling, and their events', () => {
    const positions = scenario([
      { kind: 'drive', seconds: 600, speed: 60 },
      { kind: 'idle', seconds: 300 },
      { kind: 'park', seconds: 900 },
      { kind: 'drive', seconds: 300, speed: 60 },
    ]);
    const r = derive(positions);
    expect(r.trips).toHaveLength(2);
    expect(r.stops).toHaveLength(1);
    const [t1, t2] = r.trips;
    expect(t1!.startTime).toBe(T0);
    expect(t1!.endTime).toBe(T0 + 600_000); // the first parked fix
    expect(t1!.distanceDm / 10_000).toBeCloseTo(10, 1); // 600 s at 60 km/h
    expect(t1!.inProgress).toBe(false);
    expect(t2!.inProgress).toBe(true);
    const stop = r.stops[0]!;
    expect(stop.startTime).toBe(T0 + 600_000);
    expect(stop.endTime).toBe(T0 + 1_799_000); // the last parked fix, where the drive starts
    expect(stop.engineOnS).toBe(300);
    expect(r.events.map((e) => e.type)).toEqual([
      'trip_start',
      'trip_end',
      'ignition_off',
      'trip_start', // at the last parked fix, the record before the ignition comes on
      'ignition_on',
    ]);
    const day = r.days[0]!;
    expect(day.trips).toBe(2);
    expect(day.stops).toBe(1);
    expect(day.idleS).toBe(300);
    expect(day.drivingS).toBe(600 + 300);
  });

  it('overspeed: start and end with its maximum, limit and duration; shorter runs are ignored', () => {
    const positions = scenario([
      { kind: 'drive', seconds: 120, speed: 60 },
      { kind: 'drive', seconds: 30, speed: 110 },
      { kind: 'drive', seconds: 60, speed: 60 },
      { kind: 'drive', seconds: 5, speed: 120 },
      { kind: 'drive', seconds: 60, speed: 60 },
      { kind: 'park', seconds: 600 },
    ]);
    const r = derive(positions);
    const over = r.events.filter((e) => e.type.startsWith('overspeed'));
    expect(over.map((e) => [e.type, e.time])).toEqual([
      ['overspeed_start', T0 + 120_000],
      ['overspeed_end', T0 + 150_000],
    ]);
    expect(over[1]!.attributes).toEqual({ limit: 90, max_speed: 110, duration_s: 30 });
  });

  it('a short hop inside a parking lot does not make a trip: the stop absorbs it', () => {
    const positions = scenario([
      { kind: 'park', seconds: 600 },
      { kind: 'drive', seconds: 20, speed: 10 },
      { kind: 'park', seconds: 600 },
    ]);
    const r = derive(positions);
    expect(r.trips).toHaveLength(0);
    expect(r.stops).toHaveLength(1);
    expect(r.stops[0]!.endTime).toBeNull();
  });

  it('flagged records never start or lengthen a trip', () => {
    const positions = scenario([{ kind: 'park', seconds: 1200 }], 10);
    positions[60] = { ...positions[60]!, speed: 80, attributes: { ignition: true, movement: true }, flags: ['jump'] };
    positions[61] = { ...positions[61]!, speed: 80, attributes: { ignition: true, movement: true }, flags: ['no_fix'] };
    expect(derive(positions).trips).toHaveLength(0);
  });

  it('a coverage gap longer than the gap setting splits a trip', () => {
    const a = scenario([{ kind: 'drive', seconds: 300 }]);
    const b = scenario([{ kind: 'drive', seconds: 300 }]).map((p, i) => ({
      ...p,
      id: 1000 + i,
      time: p.time + 1_200_000,
      lat: p.lat + 0.05,
    }));
    const r = derive([...a, ...b]);
    expect(r.trips).toHaveLength(2);
    expect(r.stops).toHaveLength(1);
  });

  it('alarm IOs become events only where the device reports them', () => {
    const positions = scenario([{ kind: 'drive', seconds: 10 }]);
    positions[3] = { ...positions[3]!, eventIoId: 247, attributes: { ...positions[3]!.attributes, crashDetection: 1 } };
    positions[5] = {
      ...positions[5]!,
      eventIoId: 253,
      attributes: { ...positions[5]!.attributes, greenDrivingType: 2 },
    };
    positions[7] = { ...positions[7]!, eventIoId: 246, attributes: { ...positions[7]!.attributes, towing: false } };
    const types = derive(positions).events.map((e) => e.type);
    expect(types).toContain('crash');
    expect(types).toContain('harsh_braking');
    expect(types).not.toContain('towing');
  });

  it('daily summaries follow the device time zone', () => {
    const positions = scenario([{ kind: 'drive', seconds: 7200, speed: 30 }], 10).map((p) => ({
      ...p,
      time: p.time - T0 + Date.UTC(2026, 5, 1, 20, 0),
    }));
    expect(derive(positions).days.map((d) => d.day)).toEqual(['2026-06-01']);
    expect(derive(positions, s({ timeZone: 'Europe/Vilnius' })).days.map((d) => d.day)).toEqual([
      '2026-06-01',
      '2026-06-02',
    ]);
  });
});

describe('settings', () => {
  it('device overrides replace fleet values; unknown keys and bad zones are errors', () => {
    expect(effectiveSettings(s(), { minStopDurationS: 60 }).minStopDurationS).toBe(60);
    expect(() => effectiveSettings(s(), { minStop: 60 })).toThrow();
    expect(() => effectiveSettings(s(), { timeZone: 'Mars/Olympus' })).toThrow();
    expect(effectiveSettings(s(), { maxGapS: 4000 }).offlineAfterS).toBe(4000);
  });
});

describe('window ownership', () => {
  it('the trip ending at a window start belongs to the window before it', () => {
    expect(ownsEvent({ time: 5, type: 'trip_end' }, 5)).toBe(false);
    expect(ownsEvent({ time: 5, type: 'ignition_off' }, 5)).toBe(true);
    expect(ownsEvent({ time: 4, type: 'ignition_off' }, 5)).toBe(false);
    expect(
      resetPoint(
        [
          { startTime: 1, endTime: 3 },
          { startTime: 5, endTime: null },
        ],
        4,
      ),
    ).toBe(1);
    expect(resetPoint([{ startTime: 1, endTime: 3 }], 2)).toBeNull();
  });
});

describe('incremental = from scratch (property)', () => {
  const settingsArb = fc.record({
    motionSource: fc.constantFrom('movement', 'ignition', 'speed'),
    minStopDurationS: fc.integer({ min: 30, max: 600 }),
    maxGapS: fc.integer({ min: 60, max: 900 }),
    minTripDurationS: fc.integer({ min: 0, max: 300 }),
    minTripDistanceM: fc.integer({ min: 0, max: 2000 }),
    timeZone: fc.constantFrom('UTC', 'Europe/Vilnius', 'America/Santiago'),
  }) as fc.Arbitrary<Partial<DetectionSettings>>;

  it('random histories delivered in random order and batch sizes derive the same rows as one pass', async () => {
    await fc.assert(
      fc.asyncProperty(
        historyArb,
        settingsArb,
        fc.integer({ min: 1, max: 2 ** 30 }),
        fc.integer({ min: 1, max: 40 }),
        async (spec, over, seed, maxBatch) => {
          const settings = effectiveSettings(s(), over);
          const history = buildHistory(spec, 300);
          if (history.length === 0) return;
          const store = new MemoryHistory(settings);
          for (const batch of deliveries(history, seed, maxBatch)) await store.add(batch);
          const scratch = deriveWindow({ from: null, positions: history, settings, prior: NO_PRIOR });
          const sortEvents = (e: typeof scratch.events) =>
            [...e].sort((a, b) => a.time - b.time || a.type.localeCompare(b.type));
          const sortBy = <T extends { startTime: number }>(rows: T[]) =>
            [...rows].sort((a, b) => a.startTime - b.startTime);
          expect(sortBy(store.derived.trips)).toEqual(scratch.trips);
          expect(sortBy(store.derived.stops)).toEqual(scratch.stops);
          expect(sortEvents(store.derived.events)).toEqual(sortEvents(scratch.events));
          expect([...store.derived.days].sort((a, b) => a.day.localeCompare(b.day))).toEqual(scratch.days);
          expect(store.derived.totals).toEqual(scratch.totals);
        },
      ),
      { numRuns: Number(process.env.FLEET_PROPERTY_RUNS ?? 150) },
    );
  });
});
