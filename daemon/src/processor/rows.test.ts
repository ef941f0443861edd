import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AvlRecord, IoList } from '../protocol/index.js';
import { distanceMetres, FAR_FUTURE_FROM_MS, isJump, MAX_STORABLE_MS, recordFlags, Y2000_MS } from './flags.js';
import {
  type DecodedEntry,
  emptyTrack,
  entriesToRows,
  flagJumps,
  latestPerDevice,
  type PositionRow,
  RELOCATE_STREAK,
  recordToRow,
  seenPerDevice,
} from './rows.js';

const NOW = Date.UTC(2026, 10, 25, 12, 0, 0);
const rules = { now: NOW, futureMarginMs: 24 * 3600_000 };
// Minimal IO views: the real ones come from the protocol module; these only need to be visible in the row.
const views = {
  ioJsonText: (io: IoList) =>
    JSON.stringify(Object.fromEntries(io.ids.map((id, i) => [String(id), Number(io.values[i])]))),
  attributesText: (io: IoList) =>
    JSON.stringify(io.ids.includes(239) ? { ignition: Number(io.values[io.ids.indexOf(239)]) === 1 } : {}),
};

function rec(over: Partial<AvlRecord> = {}): AvlRecord {
  return {
    timestamp: NOW - 60_000,
    priority: 0,
    longitude: 25.2797,
    latitude: 54.6872,
    altitude: 110,
    angle: 90,
    satellites: 9,
    speed: 40,
    eventIoId: 0,
    generationType: null,
    io: { ids: [239, 66], values: [1, 24079] },
    ...over,
  };
}

function row(imei: string, t: number, lat: number, lon: number): PositionRow {
  return recordToRow(imei, NOW, rec({ timestamp: t, latitude: lat, longitude: lon }), rules, views);
}

describe('recordFlags', () => {
  it('passes a good record', () => {
    expect(recordFlags(rec(), rules)).toEqual([]);
  });
  it('flags no fix: zero satellites or 0/0', () => {
    expect(recordFlags(rec({ satellites: 0 }), rules)).toEqual(['no_fix']);
    expect(recordFlags(rec({ latitude: 0, longitude: 0 }), rules)).toEqual(['no_fix']);
  });
  it('flags times beyond the future margin and before 2000, with the margin configurable', () => {
    expect(recordFlags(rec({ timestamp: NOW + 24 * 3600_000 }), rules)).toEqual([]);
    expect(recordFlags(rec({ timestamp: NOW + 24 * 3600_000 + 1 }), rules)).toEqual(['future']);
    expect(recordFlags(rec({ timestamp: NOW + 2 * 3600_000 }), { now: NOW, futureMarginMs: 3600_000 })).toEqual([
      'future',
    ]);
    expect(recordFlags(rec({ timestamp: Y2000_MS - 1 }), rules)).toEqual(['before_2000']);
    expect(recordFlags(rec({ timestamp: 0, satellites: 0 }), rules)).toEqual(['no_fix', 'before_2000']);
  });
  it('flags impossible coordinates and the 0xFFFF speed', () => {
    expect(recordFlags(rec({ latitude: 91 }), rules)).toEqual(['bad_coordinates']);
    expect(recordFlags(rec({ longitude: -180.5 }), rules)).toEqual(['bad_coordinates']);
    expect(recordFlags(rec({ speed: 0xffff }), rules)).toEqual(['bad_speed']);
  });
});

describe('recordToRow', () => {
  it('keeps raw IO by id, named attributes and every header field', () => {
    const r = recordToRow('356307042441013', NOW, rec({ eventIoId: 239, priority: 1, altitude: -6 }), rules, views);
    expect(r).toMatchObject({
      imei: '356307042441013',
      fixTime: NOW - 60_000,
      receivedAt: NOW,
      latitude: 54.6872,
      longitude: 25.2797,
      altitude: -6,
      heading: 90,
      speed: 40,
      satellites: 9,
      priority: 1,
      eventIoId: 239,
      flags: [],
    });
    expect(JSON.parse(r.io)).toEqual({ '239': 1, '66': 24079 });
    expect(JSON.parse(r.attributes)).toEqual({ ignition: true });
  });
  it('stores a fix time the database cannot hold as a storable one, flagged, with the raw value', () => {
    const huge = 2 ** 52;
    const r = recordToRow('1', NOW, rec({ timestamp: huge }), rules, views);
    expect(r.fixTime).toBeGreaterThanOrEqual(FAR_FUTURE_FROM_MS);
    expect(r.fixTime).toBeLessThanOrEqual(MAX_STORABLE_MS);
    expect(r.flags).toContain('future');
    expect(JSON.parse(r.attributes).rawTimestamp).toBe(String(huge));
  });
  it('keeps distinct far-future fix times distinct (a clamp would give them one key)', () => {
    const raw = [
      MAX_STORABLE_MS + 1,
      MAX_STORABLE_MS + 1000,
      2 ** 52,
      2 ** 52 + 1000,
      2 ** 60,
      2 ** 60 + 4096,
      2 ** 64 - 2 ** 12,
    ];
    const times = raw.map((timestamp) => recordToRow('1', NOW, rec({ timestamp }), rules, views).fixTime);
    expect(new Set(times).size).toBe(raw.length);
    for (const t of times) expect(t >= FAR_FUTURE_FROM_MS && t <= MAX_STORABLE_MS && Number.isInteger(t)).toBe(true);
    // A storable time is kept as it is.
    expect(recordToRow('1', NOW, rec({ timestamp: MAX_STORABLE_MS }), rules, views).fixTime).toBe(MAX_STORABLE_MS);
  });
  it('records the Codec 16 generation type', () => {
    const r = recordToRow('1', NOW, rec({ generationType: 5 }), rules, views);
    expect(JSON.parse(r.attributes)).toEqual({ ignition: true, generationType: 5 });
    // Beside no named values at all, and with the raw time of a fix beyond what can be stored.
    const huge = 2 ** 60;
    const bare = recordToRow(
      '1',
      NOW,
      rec({ generationType: 0, timestamp: huge, io: { ids: [], values: [] } }),
      rules,
      views,
    );
    expect(JSON.parse(bare.attributes)).toEqual({ generationType: 0, rawTimestamp: String(huge) });
  });
});

describe('jumps', () => {
  it('measures distance plausibly (Vilnius → Kaunas ≈ 92 km)', () => {
    const d = distanceMetres(54.6872, 25.2797, 54.8985, 23.9036);
    expect(d).toBeGreaterThan(88_000);
    expect(d).toBeLessThan(96_000);
  });
  it('ignores noise under a kilometre even within one second', () => {
    expect(isJump({ time: 0, latitude: 54, longitude: 25 }, { time: 0, latitude: 54.005, longitude: 25 }, 500)).toBe(
      false,
    );
  });
  it('flags a lone outlier and keeps the reference on the good track', () => {
    const t = NOW - 600_000;
    const rows = [
      row('A', t, 54.6872, 25.2797),
      row('A', t + 10_000, 54.688, 25.28),
      row('A', t + 20_000, 0.5, 0.5), // far away, 10 s later
      row('A', t + 30_000, 54.689, 25.281),
    ];
    const states = flagJumps(rows, new Map(), 500);
    expect(rows.map((r) => r.flags)).toEqual([[], [], ['jump'], []]);
    expect(states.get('A')?.ref?.time).toBe(t + 30_000);
  });
  it('compares with the known reference from earlier batches, in fix-time order', () => {
    const t = NOW - 600_000;
    const known = new Map([['A', emptyTrack({ time: t, latitude: 54.6872, longitude: 25.2797 })]]);
    // Given out of order: the far one (60 s later) is still a jump, the near one is not.
    const rows = [row('A', t + 60_000, 40, -3), row('A', t + 30_000, 54.688, 25.28)];
    flagJumps(rows, known, 500);
    expect(rows.map((r) => r.flags)).toEqual([['jump'], []]);
  });
  it('does not compare late records with a newer reference', () => {
    const t = NOW - 600_000;
    const known = new Map([['A', emptyTrack({ time: t, latitude: 54.6872, longitude: 25.2797 })]]);
    const rows = [row('A', t - 5_000, 40, -3)];
    const states = flagJumps(rows, known, 500);
    expect(rows[0]?.flags).toEqual([]);
    expect(states.get('A')?.ref?.time).toBe(t);
  });
  it(`accepts a new place after ${RELOCATE_STREAK} consistent fixes (the device was carried while silent)`, () => {
    const t = NOW - 600_000;
    const known = new Map([['A', emptyTrack({ time: t, latitude: 54.6872, longitude: 25.2797 })]]);
    const rows = [1, 2, 3, 4].map((i) => row('A', t + i * 10_000, 48.8566 + i * 0.0001, 2.3522));
    const states = flagJumps(rows, known, 500);
    expect(rows.map((r) => r.flags)).toEqual([['jump'], ['jump'], [], []]);
    expect(states.get('A')?.ref?.latitude).toBeCloseTo(48.8566 + 0.0004, 6);
  });
  it('skips rows already flagged for another reason', () => {
    const t = NOW - 600_000;
    const rows = [
      row('A', t, 54.6872, 25.2797),
      recordToRow('A', NOW, rec({ timestamp: t + 1000, satellites: 0, latitude: 1, longitude: 1 }), rules, views),
    ];
    flagJumps(rows, new Map(), 500);
    expect(rows[1]?.flags).toEqual(['no_fix']);
  });
});

describe('latest state', () => {
  it('picks, per device, the good row with the greatest fix time', () => {
    const t = NOW - 600_000;
    const rows = [row('A', t + 2, 1, 1), row('A', t + 5, 2, 2), row('B', t, 3, 3), row('A', t + 3, 4, 4)];
    const future = recordToRow('A', NOW, rec({ timestamp: NOW + 48 * 3600_000 }), rules, views);
    const latest = latestPerDevice([...rows, future]);
    expect(latest.get('A')?.fixTime).toBe(t + 5);
    expect(latest.get('B')?.fixTime).toBe(t);
  });
  it('has no latest row for a device with only flagged rows, but still a seen time', () => {
    const entries: DecodedEntry[] = [
      { id: '1-0', imei: 'A', receivedAt: NOW - 5, records: [rec({ satellites: 0 })] },
      { id: '2-0', imei: 'A', receivedAt: NOW - 1, records: [] },
      { id: '3-0', imei: 'A', receivedAt: NOW - 9, records: [] },
    ];
    const rows = entriesToRows(entries, rules, views);
    expect(latestPerDevice(rows).size).toBe(0);
    expect(seenPerDevice(entries).get('A')).toBe(NOW - 1);
  });
  it('is independent of the order rows arrive in (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ dev: fc.constantFrom('A', 'B', 'C'), t: fc.integer({ min: 0, max: 1e6 }) }), {
          minLength: 1,
        }),
        (items) => {
          const rows = items.map((i) => row(i.dev, Y2000_MS + i.t, 1, 1));
          const a = latestPerDevice(rows);
          const b = latestPerDevice([...rows].reverse());
          for (const [dev, r] of a) {
            expect(b.get(dev)?.fixTime).toBe(r.fixTime);
            expect(r.fixTime).toBe(Math.max(...rows.filter((x) => x.imei === dev).map((x) => x.fixTime)));
          }
        },
      ),
    );
  });
});
