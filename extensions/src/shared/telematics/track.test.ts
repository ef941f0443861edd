import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/index.js';
import { deviceTrack, parseTrackQuery, TrackQueryError, toleranceForZoom } from './track.js';

let testDb: TestDatabase;
let device: number;
const T0 = Date.UTC(2026, 10, 20, 8, 0, 0);
const STOP_AT: [number, number] = [13.4, 52.52];

interface Pos {
  t: number;
  lon: number;
  lat: number;
  speed: number;
  flags?: string[];
}

/** A morning drive: 100 moving fixes, a 5-minute stop, 50 moving fixes, a 1 h gap, 20 more fixes. */
function morning(): Pos[] {
  const out: Pos[] = [];
  let t = T0;
  // zig-zag of ~11 m amplitude: a line a few-pixel tolerance flattens but zoom 20 keeps
  for (let i = 0; i < 100; i++, t += 10_000)
    out.push({ t, lon: 13.3 + i * 0.001, lat: 52.52 + (i % 2) * 0.0001, speed: 40 });
  for (let i = 0; i < 30; i++, t += 10_000) out.push({ t, lon: STOP_AT[0], lat: STOP_AT[1], speed: 0 });
  for (let i = 0; i < 50; i++, t += 10_000) out.push({ t, lon: 13.4 + i * 0.001, lat: 52.52, speed: 50 });
  // bad data in the middle of the drive: must never show up on the map
  out.push({ t: t - 5_000, lon: 100, lat: -40, speed: 0, flags: ['implausible_jump'] });
  t += 3600_000;
  for (let i = 0; i < 20; i++, t += 10_000) out.push({ t, lon: 13.5 + i * 0.001, lat: 52.6, speed: 30 });
  return out;
}
const positions = morning();
const good = positions.filter((p) => !p.flags);

beforeAll(async () => {
  testDb = await createTestDatabase();
  const [row] = (await testDb.knex('devices').insert({ imei: '356307042441013', name: 'T' }).returning('id')) as {
    id: number;
  }[];
  device = row!.id;
  await testDb.knex.raw(
    `INSERT INTO positions (id, device, fix_time, location, speed, flags)
     SELECT position_id(?::int, t * 1000, 0), ?, to_timestamp(t / 1000.0), ST_SetSRID(ST_MakePoint(lon, lat), 4326), speed, flags::json
     FROM json_to_recordset(?::json) AS x(t bigint, lon float8, lat float8, speed real, flags text)`,
    [device, device, JSON.stringify(positions.map((p) => ({ ...p, flags: p.flags ? JSON.stringify(p.flags) : '[]' })))],
  );
  // another device's positions in the same time range must not leak in
  const [other] = (await testDb.knex('devices').insert({ imei: '356307042449999', name: 'O' }).returning('id')) as {
    id: number;
  }[];
  await testDb.knex.raw(
    `INSERT INTO positions (id, device, fix_time, location, speed)
     VALUES (position_id(?::int, ?::timestamptz, 0), ?, ?, ST_SetSRID(ST_MakePoint(0, 0), 4326), 0)`,
    [other!.id, new Date(T0 + 60_000), other!.id, new Date(T0 + 60_000)],
  );
});
afterAll(async () => testDb?.drop());

const kinds = (fc: { features: { properties: unknown }[] }, kind: string) =>
  fc.features.filter((f) => (f.properties as { kind: string }).kind === kind) as any[];

describe('deviceTrack', () => {
  it('splits at reporting gaps, finds the stop, marks start and end, and drops flagged positions', async () => {
    const fc = await deviceTrack(testDb.knex, { device, fromMs: T0 - 1000, toMs: T0 + 86_400_000, zoom: 20 });
    expect(fc.meta).toMatchObject({ positions: good.length, sampled: false, segments: 2, stops: 1 });

    const tracks = kinds(fc, 'track');
    expect(tracks).toHaveLength(2);
    expect(tracks[0].geometry.type).toBe('LineString');
    expect(tracks[0].properties.points).toBe(180);
    expect(tracks[1].properties.points).toBe(20);
    const allCoords = tracks.flatMap((t) => t.geometry.coordinates as number[][]);
    expect(allCoords.some(([lon]) => lon === 100)).toBe(false);
    // at zoom 20 the 11 m zig-zag survives simplification
    expect(tracks[0].geometry.coordinates.length).toBeGreaterThan(100);

    const [stop] = kinds(fc, 'stop');
    expect(stop.geometry.coordinates).toEqual(STOP_AT);
    // 30 still fixes 10 s apart, lasting until the next moving fix arrives
    expect(stop.properties.durationS).toBe(300);
    expect(stop.properties.from).toBe(T0 + 100 * 10_000);

    const [start] = kinds(fc, 'start');
    const [end] = kinds(fc, 'end');
    expect(start.geometry.coordinates).toEqual([good[0]!.lon, good[0]!.lat]);
    expect(start.properties.time).toBe(good[0]!.t);
    expect(end.geometry.coordinates).toEqual([good.at(-1)!.lon, good.at(-1)!.lat]);
  });

  it('simplifies for the zoom level', async () => {
    const far = await deviceTrack(testDb.knex, { device, fromMs: T0, toMs: T0 + 86_400_000, zoom: 8 });
    const near = await deviceTrack(testDb.knex, { device, fromMs: T0, toMs: T0 + 86_400_000, zoom: 20 });
    const vertices = (fc: typeof far) =>
      kinds(fc, 'track').reduce((n, t) => n + (t.geometry.coordinates as unknown[]).length, 0);
    expect(vertices(far)).toBeLessThan(12);
    // collinear and repeated fixes go at any zoom, the zig-zag only when zoomed out
    expect(vertices(near)).toBeGreaterThan(100);
  });

  it('bounds the output by sampling evenly but keeps the true start and end', async () => {
    const fc = await deviceTrack(testDb.knex, { device, fromMs: T0, toMs: T0 + 86_400_000, maxInputPoints: 40 });
    expect(fc.meta.sampled).toBe(true);
    const total = kinds(fc, 'track').reduce((n, t) => n + t.properties.points, 0);
    expect(total).toBeLessThanOrEqual(42);
    expect(kinds(fc, 'end')[0].properties.time).toBe(good.at(-1)!.t);
    expect(kinds(fc, 'start')[0].properties.time).toBe(good[0]!.t);
  });

  it('limits the range to the requested window and returns an empty collection when nothing is there', async () => {
    const part = await deviceTrack(testDb.knex, { device, fromMs: T0, toMs: T0 + 99 * 10_000, zoom: 20 });
    expect(kinds(part, 'track')[0].properties.points).toBe(100);
    expect(kinds(part, 'stop')).toHaveLength(0);
    const none = await deviceTrack(testDb.knex, { device, fromMs: T0 - 7200_000, toMs: T0 - 3600_000 });
    expect(none.features).toEqual([]);
    expect(none.meta.positions).toBe(0);
  });
});

describe('track samples (replay and hover)', () => {
  it('returns timed positions in order with speed, evenly sampled, first and last kept, no flagged ones', async () => {
    const all = await deviceTrack(testDb.knex, { device, fromMs: T0, toMs: T0 + 86_400_000, samples: 5000 });
    expect(all.samples).toHaveLength(good.length);
    expect(all.samples![0]).toEqual([good[0]!.t, good[0]!.lon, good[0]!.lat, 40, null]);
    expect(all.samples!.some(([, lon]) => lon === 100)).toBe(false);
    const times = all.samples!.map(([t]) => t);
    expect(times).toEqual([...times].sort((a, b) => a - b));

    const few = await deviceTrack(testDb.knex, { device, fromMs: T0, toMs: T0 + 86_400_000, samples: 20 });
    expect(few.samples!.length).toBeLessThanOrEqual(21);
    expect(few.samples!.at(-1)![0]).toBe(good.at(-1)!.t);
    const none = await deviceTrack(testDb.knex, { device, fromMs: T0, toMs: T0 + 86_400_000 });
    expect(none.samples).toBeUndefined();
    expect(() => parseTrackQuery('7', { from: '0', to: '1', samples: '99999' })).toThrow(/samples/);
  });
});

describe('parseTrackQuery', () => {
  it('accepts ISO and epoch times and rejects inverted, huge or missing ranges', () => {
    expect(parseTrackQuery('7', { from: '2026-11-20T08:00:00Z', to: String(T0 + 1000), zoom: '12' })).toEqual({
      device: 7,
      fromMs: T0,
      toMs: T0 + 1000,
      zoom: 12,
    });
    expect(() => parseTrackQuery('7', { from: String(T0), to: String(T0) })).toThrow(TrackQueryError);
    expect(() => parseTrackQuery('7', { from: '0', to: String(T0) })).toThrow(/92 days/);
    expect(() => parseTrackQuery('7', { to: String(T0) })).toThrow(/from is required/);
    expect(() => parseTrackQuery("7'--", { from: '0', to: '1' })).toThrow(/device/);
    expect(() => parseTrackQuery('7', { from: '0', to: '1', zoom: 'x' })).toThrow(/zoom/);
  });

  it.each([
    ['2147483648', { from: '0', to: '1' }, /device id/],
    ['99999999999999999999', { from: '0', to: '1' }, /device id/],
    ['7', { from: '99999999999999999999', to: '1' }, /from is not a time between 1970 and 9999/],
    ['7', { from: '0', to: '8640000000000001' }, /to is not a time/],
    ['7', { from: '+275760-09-13T00:00:00.000Z', to: '1' }, /from is not a time/],
    ['7', { from: ['0', '1'], to: '1' }, /from/],
  ])('refuses device %s with %j as a TrackQueryError (a 400), never a database error', (device, q, message) => {
    expect(() => parseTrackQuery(device, q)).toThrow(message);
  });

  it('uses about one 512-px tile pixel as tolerance', () => {
    expect(toleranceForZoom(0)).toBeCloseTo(360 / 512);
    expect(toleranceForZoom(10)).toBeCloseTo(toleranceForZoom(9) / 2);
    expect(toleranceForZoom(99)).toBe(toleranceForZoom(22));
  });
});
