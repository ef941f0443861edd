import { describe, expect, it } from 'vitest';
import {
  buildReport,
  geofenceVisits,
  type Item,
  itemsQuery,
  parseReportQuery,
  ReportQueryError,
  reportCsv,
} from './report.js';
import { deviceWrite, fleetSettingsWrite } from './rules.js';
import { tripGpx, tripKml } from './trip-files.js';

const trip = (id: number, km: string, max: number) => ({
  id,
  device: { id: 7, name: 'Truck, "12"', imei: '356307042441013' },
  start_time: '2026-11-28T10:00:00.000Z',
  end_time: '2026-11-28T10:10:00.000Z',
  start_location: { type: 'Point', coordinates: [25.2797, 54.6872] },
  end_location: { type: 'Point', coordinates: [25.3, 54.7] },
  distance_km: km,
  duration_s: 600,
  driving_s: 600,
  idle_s: 0,
  max_speed: max,
  avg_speed: 62.5,
  start_odometer_km: '1000.0000',
  end_odometer_km: '1010.4170',
  in_progress: false,
});

describe('reports', () => {
  it('parse the range, devices and kind, with clear errors', () => {
    const q = parseReportQuery({
      kind: 'trips',
      devices: '7,8',
      from: '2026-11-28T00:00:00Z',
      to: String(Date.UTC(2026, 10, 29)),
    });
    expect(q.devices).toEqual([7, 8]);
    expect(itemsQuery(q).filter).toEqual({
      _and: [
        { start_time: { _gte: '2026-11-28T00:00:00.000Z', _lte: '2026-11-29T00:00:00.000Z' } },
        { device: { _in: [7, 8] } },
      ],
    });
    expect(() => parseReportQuery({ kind: 'nope', from: 1, to: 2 })).toThrow(ReportQueryError);
    expect(() => parseReportQuery({ kind: 'trips', from: 'x', to: 2 })).toThrow(/from must be a time/);
    expect(() => parseReportQuery({ kind: 'trips', devices: '1;DROP', from: 1, to: 2 })).toThrow(/devices/);
    expect(() => parseReportQuery({ kind: 'trips', from: 1, to: 2, tz: 'Mars/Olympus' })).toThrow(/tz must be/);
    expect(parseReportQuery({ kind: 'trips', from: 1, to: 2 }).timeZone).toBe('UTC');
  });

  it('rows, totals and the CSV of exactly those rows', () => {
    const q = parseReportQuery({ kind: 'trips', from: 0, to: Date.now(), limit: '2', tz: 'Europe/Vilnius' });
    const r = buildReport(q, [trip(1, '10.4170', 110), trip(2, '4.9170', 60), trip(3, '1', 1)]);
    expect(r.truncated).toBe(true);
    expect(r.rows.map((x) => x.id)).toEqual([1, 2]);
    expect(r.totals).toMatchObject({ distance_km: 15.334, duration_s: 1200, max_speed: 110 });
    const lines = reportCsv(r).trimEnd().split('\r\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^Device,Start \(Europe\/Vilnius\),End \(Europe\/Vilnius\),/);
    // Times in the viewer's zone (UTC+2 in November), to the second, as the panel shows them.
    expect(lines[1]).toBe(
      '"Truck, ""12"" (356307042441013)",2026-11-28 12:00:00,2026-11-28 12:10:00,"54.687200, 25.279700","54.700000, 25.300000",10.417,600,600,0,110,62.5,1000,1010.417,no',
    );
  });

  it('geofence visits pair each entry with the next exit per device and geofence', () => {
    let id = 0;
    const ev = (device: number, type: string, key: string, time: string, name = `Fence ${key}`): Item => ({
      id: ++id,
      device: { id: device, name: `Truck ${device}`, imei: `35630704244101${device}` },
      type,
      key,
      time: `2026-11-28T${time}Z`,
      location: { type: 'Point', coordinates: [25, 54] },
      attributes: { geofence: Number(key), geofence_name: name },
    });
    const events = [
      ev(1, 'geofence_enter', '7', '07:00:00'), // entered before the range, left inside it
      ev(1, 'geofence_exit', '7', '08:30:00'),
      ev(1, 'geofence_enter', '8', '09:00:00', 'Depot'),
      ev(2, 'geofence_enter', '7', '09:10:00'),
      ev(1, 'geofence_exit', '8', '09:20:05', 'Depot'),
      ev(1, 'ignition_on', '', '09:30:00'),
      ev(1, 'geofence_enter', '7', '06:00:00'), // an older visit, over before the range
      ev(1, 'geofence_exit', '7', '06:30:00'),
      ev(2, 'geofence_exit', '9', '09:15:00'), // its entry lies before the lookback
      ev(2, 'geofence_enter', '7', '13:00:00'), // after the range
    ];
    const visits = geofenceVisits(events, { from: '2026-11-28T08:00:00Z', to: '2026-11-28T12:00:00Z' });
    expect(visits.map((v) => [v.device.id, v.geofence, v.entered, v.exited, v.duration_s])).toEqual([
      [1, 'Fence 7', '2026-11-28T07:00:00Z', '2026-11-28T08:30:00Z', 5400],
      [1, 'Depot', '2026-11-28T09:00:00Z', '2026-11-28T09:20:05Z', 1205],
      [2, 'Fence 7', '2026-11-28T09:10:00Z', null, null], // still inside
      [2, 'Fence 9', null, '2026-11-28T09:15:00Z', null],
    ]);
    const q = parseReportQuery({ kind: 'visits', from: '2026-11-28T08:00:00Z', to: '2026-11-28T12:00:00Z' });
    expect(itemsQuery(q).filter._and).toContainEqual({ type: { _in: ['geofence_enter', 'geofence_exit'] } });
    const r = buildReport(q, events);
    expect(r.rows[1]).toMatchObject({ geofence: 'Depot', entered: '2026-11-28 09:00:00', duration_s: 1205 });
    expect(r.totals).toMatchObject({ device: '4 visits', duration_s: 6605 });
  });

  it('a trip as GPX and KML', () => {
    const t = {
      name: 'Truck <12>',
      points: [
        { lon: 25.1, lat: 54.1, time: '2026-11-28T10:00:00.000Z', speed: 50 },
        { lon: 25.2, lat: 54.2, time: '2026-11-28T10:01:00.000Z', speed: 55 },
      ],
    };
    expect(tripGpx(t)).toContain('<trkpt lat="54.1" lon="25.1"><time>2026-11-28T10:00:00.000Z</time></trkpt>');
    expect(tripGpx(t)).toContain('<name>Truck &lt;12&gt;</name>');
    expect(tripKml(t)).toContain('<coordinates>25.1,54.1 25.2,54.2</coordinates>');
  });
});

describe('history write rules', () => {
  it('accumulators are computed; corrections and overrides are for administrators and must be valid', () => {
    expect(deviceWrite({ odometer_km: 5 }, { admin: true })).toMatchObject({ ok: false, status: 403 });
    expect(deviceWrite({ odometer_correction_km: 5 }, { admin: false })).toMatchObject({ ok: false, status: 403 });
    expect(deviceWrite({ odometer_correction_km: 'x' }, { admin: true })).toMatchObject({ ok: false, status: 400 });
    expect(deviceWrite({ history_settings: { maxGapS: 0 } }, { admin: true })).toMatchObject({
      ok: false,
      status: 400,
    });
    expect(deviceWrite({ history_settings: { timeZone: 'Europe/Vilnius' } }, { admin: true })).toMatchObject({
      ok: true,
      recompute: true,
    });
    expect(deviceWrite({ name: 'x' }, { admin: false })).toMatchObject({ ok: true, recompute: false });
    expect(fleetSettingsWrite({ time_zone: 'Nowhere/Else' }, { admin: true })).toMatchObject({
      ok: false,
      status: 400,
    });
    expect(fleetSettingsWrite({ max_gap_s: 600 }, { admin: false })).toMatchObject({ ok: false, status: 403 });
    expect(fleetSettingsWrite({ max_gap_s: '600', motion_source: 'speed' }, { admin: true })).toMatchObject({
      ok: true,
    });
  });
});
