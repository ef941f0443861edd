import { describe, expect, it } from 'vitest';
import {
  formatAge,
  formatClock,
  formatCoordinates,
  formatDuration,
  formatHms,
  formatInt,
  formatTime,
  formatTimeIn,
  isTimeZone,
} from './index.js';

describe('time format shared by the panels', () => {
  it('writes local date and time with seconds, and nothing for no time', () => {
    const ms = new Date(2026, 10, 30, 9, 5, 7).getTime();
    expect(formatTime(ms)).toBe('2026-11-30 09:05:07');
    expect(formatTime(new Date(ms).toISOString())).toBe('2026-11-30 09:05:07');
    expect(formatClock(ms)).toBe('09:05:07');
    expect(formatTime(null)).toBe('');
    expect(formatTime('not a time')).toBe('');
  });

  it('writes the same format in a named zone (server-side tables), and knows real zones', () => {
    expect(formatTimeIn('2026-11-30T23:59:58.900Z', 'UTC')).toBe('2026-11-30 23:59:58');
    expect(formatTimeIn('2026-11-30T23:05:07Z', 'Europe/Vilnius')).toBe('2026-12-01 01:05:07');
    expect(formatTimeIn('2026-07-01T00:00:00Z', 'America/New_York')).toBe('2026-06-30 20:00:00');
    expect(formatTimeIn(null, 'UTC')).toBe('');
    expect([isTimeZone('Europe/Vilnius'), isTimeZone('Mars/Olympus')]).toEqual([true, false]);
  });

  it('writes ages, durations and counts', () => {
    expect(formatAge(null)).toBe('never');
    expect(formatAge(0, 30_000)).toBe('30 s ago');
    expect(formatAge(0, 7_200_000)).toBe('2 h ago');
    expect([formatDuration(40), formatDuration(720), formatDuration(3900)]).toEqual(['40 s', '12 min', '1 h 05 min']);
    expect([formatHms(0), formatHms(59.6), formatHms(3909), formatHms(null)]).toEqual([
      '0:00:00',
      '0:01:00',
      '1:05:09',
      '',
    ]);
    expect([formatInt(999), formatInt(12_345), formatInt(1_234_567)]).toEqual(['999', '12,345', '1,234,567']);
  });

  it('writes a point as latitude, longitude and nothing for other values', () => {
    expect(formatCoordinates({ type: 'Point', coordinates: [8.683417, 50.112389] })).toBe('50.11239, 8.68342');
    expect(formatCoordinates('{"type":"Point","coordinates":[-0.1,51.5]}')).toBe('51.50000, -0.10000');
    expect(formatCoordinates('SRID=4326;POINT(10 -20.5)')).toBe('-20.50000, 10.00000');
    expect(formatCoordinates({ type: 'Polygon', coordinates: [] })).toBe('');
    expect(formatCoordinates(null)).toBe('');
    expect(formatCoordinates({ type: 'Point', coordinates: ['a', 1] })).toBe('');
  });
});
