import { describe, expect, it } from 'vitest';
import { cellText, heading, rowRequest } from './view.js';

describe('reports panel view', () => {
  it('shows durations as h:mm:ss under a heading without "(s)", other cells as they are', () => {
    const duration = { key: 'duration_s', label: 'Duration (s)', seconds: true };
    expect(heading(duration)).toBe('Duration');
    expect(cellText(duration, 3909)).toBe('1:05:09');
    expect(cellText({ key: 'distance_km', label: 'Distance (km)' }, 10.417)).toBe('10.417');
    expect(cellText({ key: 'end_time', label: 'End' }, null)).toBe('');
  });

  it('a trip asks the map for its track (whole seconds around it), a stop or event for its point', () => {
    const trip = {
      id: 1,
      device_id: 7,
      device_name: 'Truck 12',
      device_imei: '356307042441013',
      start_at: '2026-11-28T10:00:00.400Z',
      end_at: '2026-11-28T10:10:00.200Z',
    };
    expect(rowRequest('trips', trip)).toEqual({
      kind: 'track',
      device: { id: 7, name: 'Truck 12', imei: '356307042441013' },
      fromMs: Date.parse('2026-11-28T10:00:00Z'),
      toMs: Date.parse('2026-11-28T10:10:01Z'),
    });
    expect(rowRequest('stops', { id: 2, lon: 25.3, lat: 54.7 })).toEqual({
      kind: 'centre',
      lng: 25.3,
      lat: 54.7,
      zoom: 16,
    });
    expect(rowRequest('events', { id: 3, lon: null, lat: null })).toBeNull();
  });
});
