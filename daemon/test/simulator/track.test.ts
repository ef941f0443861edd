import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CODEC_8, CODEC_8E, CODEC_16, decodeAvlFrame, encodeAvlFrame } from '../../src/protocol/index.js';
import { commandReply } from '../../src/simulator/commands.js';
import { Histogram } from '../../src/simulator/histogram.js';
import { isValidImei, simulatedImei } from '../../src/simulator/imei.js';
import { deriveSeed } from '../../src/simulator/rng.js';
import { distanceM, IO, Track } from '../../src/simulator/track.js';

const T0 = Date.UTC(2026, 10, 25, 12, 0, 0);

function ioOf(rec: { io: { ids: number[]; values: unknown[] } }, id: number): unknown {
  return rec.io.values[rec.io.ids.indexOf(id)];
}

describe('simulated IMEIs', () => {
  it('are valid 15-digit Luhn IMEIs, unique per index and stable per seed', () => {
    const a = Array.from({ length: 2000 }, (_, i) => simulatedImei(7, i));
    expect(a.every(isValidImei)).toBe(true);
    expect(new Set(a).size).toBe(a.length);
    expect(simulatedImei(7, 42)).toBe(a[42]);
    expect(simulatedImei(8, 42)).not.toBe(a[42]);
    // A known real IMEI passes the same check (the Luhn digit is computed, not assumed).
    expect(isValidImei('356307042441013')).toBe(true);
    expect(isValidImei('356307042441014')).toBe(false);
  });
});

describe('tracks', () => {
  it('produce plausible motion: unique increasing fix times, speeds 0-120, implied speeds consistent', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.integer({ min: 200, max: 30_000 }), (seed, stepMs) => {
        let now = T0;
        const track = new Track({ seed }, now);
        const all = [];
        for (let frame = 0; frame < 60; frame++) {
          now += stepMs;
          all.push(...track.nextRecords(10, now));
        }
        for (let i = 1; i < all.length; i++) {
          const a = all[i - 1]!;
          const b = all[i]!;
          expect(b.timestamp).toBeGreaterThan(a.timestamp);
          expect(b.speed).toBeGreaterThanOrEqual(0);
          expect(b.speed).toBeLessThanOrEqual(120);
          const metres = distanceM({ lat: a.latitude, lon: a.longitude }, { lat: b.latitude, lon: b.longitude });
          const kmh = metres / 1000 / ((b.timestamp - a.timestamp) / 3_600_000);
          // Rounding coordinates to 1e-7° (~1 cm) is the only slack needed.
          expect(metres <= 0.05 || kmh <= 125).toBe(true);
          // IO agrees with the header: movement iff speed, IO 24 = speed, ignition on while moving.
          expect(ioOf(b, IO.movement)).toBe(b.speed > 0 ? 1 : 0);
          expect(ioOf(b, IO.speed)).toBe(b.speed);
          if (b.speed > 0) expect(ioOf(b, IO.ignition)).toBe(1);
          const mv = ioOf(b, IO.externalVoltage) as number;
          expect(mv).toBeGreaterThan(11_000);
          expect(mv).toBeLessThan(15_000);
          expect(b.satellites).toBeGreaterThanOrEqual(4);
        }
      }),
      { numRuns: 25 },
    );
  });

  it('drive and park: over an hour a vehicle both moves and stops with the ignition off', () => {
    let now = T0;
    const track = new Track({ seed: deriveSeed(1, 3) }, now);
    const recs = [];
    for (let i = 0; i < 3600; i++) {
      now += 1000;
      recs.push(...track.nextRecords(1, now));
    }
    expect(recs.some((r) => r.speed > 30)).toBe(true);
    expect(recs.some((r) => r.speed === 0 && ioOf(r, IO.ignition) === 0)).toBe(true);
    const events = new Set(recs.map((r) => r.eventIoId));
    expect(events.has(IO.ignition)).toBe(true);
    // Stops of 10 s or more with the engine running (movement 0, ignition 1) happen too.
    let run = 0;
    let longest = 0;
    for (const r of recs) {
      run = r.speed === 0 && ioOf(r, IO.ignition) === 1 ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    expect(longest).toBeGreaterThanOrEqual(10);
    expect(events.has(IO.movement)).toBe(true);
    // Odometer never decreases and grows by the distance driven.
    const odo = recs.map((r) => ioOf(r, IO.totalOdometer) as number);
    expect(odo.every((v, i) => i === 0 || v >= odo[i - 1]!)).toBe(true);
    expect(odo.at(-1)! - odo[0]!).toBeGreaterThan(1000);
  });

  it('are reproducible: same seed and clock give byte-identical frames, another seed does not', () => {
    const frames = (seed: number) => {
      let now = T0;
      const track = new Track({ seed }, now);
      return Array.from({ length: 20 }, () => {
        now += 1000;
        return encodeAvlFrame(CODEC_8E, track.nextRecords(10, now)).toString('hex');
      });
    };
    expect(frames(5)).toEqual(frames(5));
    expect(frames(5)).not.toEqual(frames(6));
  });

  it('encode to frames the protocol decoder reads back unchanged (Codec 8, 8E and 16)', () => {
    const track = new Track({ seed: 9, center: { lat: -33.45, lon: -70.66 } }, T0);
    for (const codec of [CODEC_8, CODEC_8E, CODEC_16]) {
      const records = track.nextRecords(10, T0 + 10_000 * codec);
      const decoded = decodeAvlFrame(encodeAvlFrame(codec, records));
      expect(decoded.records.map((r) => [r.timestamp, r.latitude, r.longitude, r.speed, r.angle])).toEqual(
        records.map((r) => [r.timestamp, r.latitude, r.longitude, r.speed, r.angle]),
      );
      const byId = (r: (typeof records)[number]) => Object.fromEntries(r.io.ids.map((id, i) => [id, r.io.values[i]]));
      expect(byId(decoded.records[3]!)).toEqual(byId(records[3]!));
      // Southern/western coordinates survive the signed encoding.
      expect(decoded.records[0]!.latitude).toBeLessThan(0);
      expect(decoded.records[0]!.longitude).toBeLessThan(0);
    }
  });
});

describe('command replies', () => {
  const track = new Track({ seed: 1 }, T0);
  track.nextRecords(5, T0 + 5000);
  const identity = {
    imei: '350001000000018',
    model: 'FMB920',
    firmware: '03.29.00.Rev.04',
    bootedAt: T0 - 3600_000,
    params: new Map(),
  };

  it('answer like FMB firmware and change state for setdigout / setparam', () => {
    expect(commandReply('getver', identity, track, T0)).toMatch(
      /^Ver:03\.29\.00\.Rev\.04 .*Hw:FMB920 .*IMEI:350001000000018/,
    );
    expect(commandReply('getinfo', identity, track, T0)).toMatch(
      /^INI:2026\/11\/25 11:00 RTC:2026\/11\/25 12:00 .* GPS:1 SAT:\d+/,
    );
    expect(commandReply('getgps', identity, track, T0)).toMatch(
      new RegExp(`^GPS:1 Sat:\\d+ Lat:${track.lat.toFixed(6)} Long:${track.lon.toFixed(6)} `),
    );
    expect(commandReply('getio', identity, track, T0)).toMatch(/DO1:0 DO2:0$/);
    expect(commandReply('setdigout 1', identity, track, T0)).toBe('DOUT1:1 Timeout:INFINITY DOUT2:0 Timeout:INFINITY');
    expect(commandReply('getio', identity, track, T0)).toMatch(/DO1:1 DO2:0$/);
    expect(track.record(T0 + 6000).io.values[track.record(T0 + 7000).io.ids.indexOf(IO.digitalOutput1)]).toBe(1);
    expect(commandReply('setparam 2004:example.net', identity, track, T0)).toBe('New value 2004:example.net;');
    expect(commandReply('getparam 2004', identity, track, T0)).toBe('Param ID:2004 Value:example.net');
    expect(commandReply('setdigout x', identity, track, T0)).toMatch(/^Invalid argument/);
    expect(commandReply('frobnicate now', identity, track, T0)).toBe('Unknown command: frobnicate');
  });
});

describe('latency histogram', () => {
  it('reports quantiles within its bucket error and merges across workers', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let v = 1; v <= 10_000; v++) (v % 2 ? a : b).record(v * 10);
    const m = new Histogram();
    m.merge(a.toJSON());
    m.merge(b.toJSON());
    expect(m.count).toBe(10_000);
    expect(Math.abs(m.quantile(0.5) - 50_000) / 50_000).toBeLessThan(0.07);
    expect(Math.abs(m.quantile(0.99) - 99_000) / 99_000).toBeLessThan(0.07);
    expect(m.max).toBe(100_000);
  });
});
