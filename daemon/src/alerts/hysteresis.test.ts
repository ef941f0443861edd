import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Fence, type FenceFix, type FenceState, geofenceEvents, type HysteresisSettings } from './hysteresis.js';

const T0 = Date.UTC(2026, 10, 30, 8, 0, 0);
const DEPOT: Fence = { id: 7, name: 'Depot', speedLimit: null };
const fences = new Map([[DEPOT.id, DEPOT]]);
const settings: HysteresisSettings = { marginM: 15, dwellS: 0, dwellFixes: 2 };

/** A fix `i` seconds × 10 after T0 at a signed distance (metres, negative = inside) from the depot's edge. */
function fix(i: number, distance: number | null, over: Partial<FenceFix> = {}): FenceFix {
  return {
    time: T0 + i * 10_000,
    position: i,
    lon: 25 + i / 1e4,
    lat: 54,
    speed: 30,
    flagged: false,
    fences: distance === null ? new Map() : new Map([[DEPOT.id, distance]]),
    ...over,
  };
}
const types = (fixes: FenceFix[], s = settings, f: ReadonlyMap<number, Fence> = fences) =>
  geofenceEvents(fixes, f, new Map(), s).events.map((e) => `${e.type}@${(e.time - T0) / 10_000}`);

describe('geofence hysteresis', () => {
  it('drives in and out: one entry at the confirming fix, one exit with the visit duration', () => {
    const fixes = [
      fix(0, 300),
      fix(1, 100),
      fix(2, -50),
      fix(3, -80),
      fix(4, -60),
      fix(5, 40),
      fix(6, 90),
      fix(7, null),
    ];
    const { events, state } = geofenceEvents(fixes, fences, new Map(), settings);
    expect(events.map((e) => `${e.type}@${(e.time - T0) / 10_000}`)).toEqual(['geofence_enter@3', 'geofence_exit@6']);
    expect(events[0]).toMatchObject({ key: '7', position: 3, attributes: { geofence: 7, geofence_name: 'Depot' } });
    expect(events[0]!.attributes.since).toBe(new Date(T0 + 20_000).toISOString());
    // Crossed in at fix 2, out at fix 5: 30 s inside.
    expect(events[1]!.attributes.duration_s).toBe(30);
    expect(state.get(7)).toMatchObject({ inside: false, pending: null });
  });

  it('zig-zag inside the boundary margin changes nothing', () => {
    const zig = Array.from({ length: 40 }, (_, i) => fix(i, i % 2 === 0 ? 14 : -14));
    expect(types(zig)).toEqual([]);
  });

  it('property: entering, zig-zagging along the edge (excursions shorter than the dwell), leaving → one entry, one exit', () => {
    const step = fc.oneof(
      fc.record({ side: fc.constant('in' as const), n: fc.integer({ min: 1, max: 6 }) }),
      fc.record({ side: fc.constant('out' as const), n: fc.integer({ min: 1, max: 2 }) }),
      fc.record({ side: fc.constant('band' as const), n: fc.integer({ min: 1, max: 6 }) }),
    );
    fc.assert(
      fc.property(
        fc.array(step, { maxLength: 30 }),
        fc.integer({ min: 2, max: 3 }),
        fc.double({ min: 16, max: 200, noNaN: true }),
        (zigzag, dwellFixes, depth) => {
          const s = { ...settings, dwellFixes };
          const distances: number[] = [400, 200, 100];
          for (let i = 0; i < dwellFixes; i++) distances.push(-depth);
          for (const z of zigzag) {
            // Outside excursions stay shorter than the dwell, and always come back in.
            const n = z.side === 'out' ? Math.min(z.n, dwellFixes - 1) : z.n;
            for (let i = 0; i < n; i++) distances.push(z.side === 'in' ? -depth : z.side === 'out' ? depth : 5);
            if (z.side === 'out') distances.push(-depth);
          }
          for (let i = 0; i < dwellFixes + 2; i++) distances.push(300 + i);
          const got = types(
            distances.map((d, i) => fix(i, d)),
            s,
          ).map((t) => t.split('@')[0]);
          expect(got).toEqual(['geofence_enter', 'geofence_exit']);
        },
      ),
    );
  });

  it('ignores flagged fixes (no fix, jumps) entirely', () => {
    const fixes = [fix(0, 200), fix(1, -100, { flagged: true }), fix(2, -100, { flagged: true }), fix(3, 200)];
    expect(types(fixes)).toEqual([]);
    // A flagged fix outside does not interrupt a run inside either.
    expect(types([fix(0, 200), fix(1, -100), fix(2, 500, { flagged: true }), fix(3, -100)])).toEqual([
      'geofence_enter@3',
    ]);
  });

  it('dwell by time: the run must span dwell_s seconds', () => {
    const fixes = [fix(0, 100), ...Array.from({ length: 8 }, (_, i) => fix(i + 1, -100))];
    // First inside fix at step 1 (10 s); 60 s later is step 7.
    expect(types(fixes, { marginM: 15, dwellS: 60, dwellFixes: 1 })).toEqual(['geofence_enter@7']);
    expect(types(fixes, { marginM: 15, dwellS: 0, dwellFixes: 1 })).toEqual(['geofence_enter@1']);
  });

  it('a fence the device is inside but no fix mentions any more counts as left', () => {
    const prior = new Map<number, FenceState>([
      [7, { inside: true, since: T0 - 60_000, pending: null, overspeed: null }],
    ]);
    const { events } = geofenceEvents([fix(0, null), fix(1, null)], fences, prior, settings);
    expect(events.map((e) => e.type)).toEqual(['geofence_exit']);
    expect(events[0]!.attributes.duration_s).toBe(60);
  });

  it('zone speed limit: overspeed events name the zone, and the exit ends one in progress', () => {
    const school: Fence = { id: 9, name: 'School', speedLimit: 30 };
    const f = new Map([[9, school]]);
    const at = (i: number, d: number | null, speed: number) =>
      fix(i, null, { speed, fences: d === null ? new Map() : new Map([[9, d]]) });
    const { events } = geofenceEvents(
      [
        at(0, 100, 50),
        at(1, -50, 25),
        at(2, -50, 28),
        at(3, -50, 45),
        at(4, -50, 52),
        at(5, -50, 29),
        at(6, -50, 40),
        at(7, 80, 60),
        at(8, 90, 60),
      ],
      f,
      new Map(),
      settings,
    );
    expect(events.map((e) => `${e.type}@${(e.time - T0) / 10_000}:${e.key}`)).toEqual([
      'geofence_enter@2:9',
      'overspeed_start@3:zone:9',
      'overspeed_end@5:zone:9',
      'overspeed_start@6:zone:9',
      'overspeed_end@8:zone:9',
      'geofence_exit@8:9',
    ]);
    expect(events[1]!.attributes).toMatchObject({ geofence_name: 'School', limit: 30, speed: 45 });
    expect(events[2]!.attributes).toMatchObject({ max_speed: 52, duration_s: 20, limit: 30 });
  });

  it('property: fixes cut into windows with the state carried over give the from-scratch events', () => {
    const fences2 = new Map<number, Fence>([
      [1, { id: 1, name: 'A', speedLimit: 40 }],
      [2, { id: 2, name: 'B', speedLimit: null }],
    ]);
    const arbFix = fc.record({
      a: fc.option(fc.integer({ min: -100, max: 100 }), { nil: null }),
      b: fc.option(fc.integer({ min: -100, max: 100 }), { nil: null }),
      speed: fc.integer({ min: 0, max: 80 }),
      flagged: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
    });
    fc.assert(
      fc.property(fc.array(arbFix, { maxLength: 60 }), fc.array(fc.nat(), { maxLength: 5 }), (raw, cutsRaw) => {
        const all: FenceFix[] = raw.map((r, i) => {
          const m = new Map<number, number>();
          if (r.a !== null) m.set(1, r.a);
          if (r.b !== null) m.set(2, r.b);
          return fix(i, null, { speed: r.speed, flagged: r.flagged, fences: m });
        });
        const whole = geofenceEvents(all, fences2, new Map(), settings).events;
        const cuts = [...new Set(cutsRaw.map((c) => c % (all.length + 1)))].sort((x, y) => x - y);
        let state = new Map<number, FenceState>();
        const pieces = [];
        let from = 0;
        for (const cut of [...cuts, all.length]) {
          const r = geofenceEvents(all.slice(from, cut), fences2, state, settings);
          pieces.push(...r.events);
          state = r.state;
          from = cut;
        }
        const norm = (es: typeof whole) =>
          es.map((e) => `${e.time}|${e.type}|${e.key}|${JSON.stringify(e.attributes)}`).sort();
        expect(norm(pieces)).toEqual(norm(whole));
      }),
    );
  });
});
