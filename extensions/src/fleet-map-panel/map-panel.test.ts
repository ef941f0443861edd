import { describe, expect, it } from 'vitest';
import { FleetState } from './fleet-state.js';
import { basemapStyle, deviceLayers, STATUS_COLOURS } from './map-style.js';
import { devicePopupHtml, escapeHtml, formatAge, formatCount } from './popup.js';
import { fromDateTimeLocal, lastHours, toDateTimeLocal } from './time-range.js';

const feature = (id: number, status = 'online', name = `D${id}`, lon = id) => ({
  type: 'Feature' as const,
  id,
  geometry: { type: 'Point' as const, coordinates: [lon, 0] },
  properties: { id, name, imei: `35${id}`, status, speed: 0, heading: 0, fix: 0, seen: 0, attrs: {} },
});

describe('FleetState', () => {
  it('replaces on a full poll and patches on a delta poll', () => {
    const s = new FleetState();
    s.replace({ type: 'FeatureCollection', features: [feature(1), feature(2), feature(3)] });
    expect(s.size).toBe(3);
    expect(s.patch({ type: 'FeatureCollection', features: [feature(2, 'moving', 'D2', 9), feature(4)] })).toBe(2);
    expect(s.size).toBe(4);
    expect(s.get(2)?.geometry.coordinates).toEqual([9, 0]);
    expect(s.get('2')?.properties.status).toBe('moving');
    s.replace({ type: 'FeatureCollection', features: [feature(5)] });
    expect(s.collection().features.map((f) => f.properties.id)).toEqual([5]);
  });

  it('searches by name or IMEI', () => {
    const s = new FleetState();
    s.replace({ type: 'FeatureCollection', features: [feature(1, 'online', 'Truck'), feature(22, 'online', 'Van')] });
    expect(s.search('tru').map((d) => d.id)).toEqual([1]);
    expect(s.search('3522').map((d) => d.id)).toEqual([22]);
    expect(s.search('')).toHaveLength(2);
  });
});

describe('basemapStyle', () => {
  it('defaults to the offline outlines served by the endpoint', () => {
    const style = basemapStyle('', 'http://h/fleet/basemap/countries.geojson');
    expect(typeof style).toBe('object');
    const s = style as Exclude<typeof style, string>;
    expect(s.sources.countries).toMatchObject({ type: 'geojson', data: 'http://h/fleet/basemap/countries.geojson' });
    // no layer may need glyphs or sprites
    expect(s.layers.every((l) => l.type !== 'symbol')).toBe(true);
    expect(s.glyphs).toBeUndefined();
  });

  it('uses XYZ templates as raster tiles and anything else as a style URL', () => {
    const raster = basemapStyle('https://t.example/{z}/{x}/{y}.png', 'x', '© OSM') as Exclude<
      ReturnType<typeof basemapStyle>,
      string
    >;
    expect(raster.sources.basemap).toMatchObject({
      type: 'raster',
      tiles: ['https://t.example/{z}/{x}/{y}.png'],
      attribution: '© OSM',
    });
    expect(basemapStyle(' https://t.example/style.json ', 'x')).toBe('https://t.example/style.json');
  });

  it('colours devices by status and never uses symbol layers', () => {
    const layers = deviceLayers();
    expect(layers.map((l) => l.type)).toEqual(['circle', 'circle']);
    expect(JSON.stringify(layers[1]!.paint)).toContain(STATUS_COLOURS.moving);
  });
});

describe('popup', () => {
  it('escapes everything that comes from the database', () => {
    const f = feature(1, 'online', '<img src=x onerror=alert(1)>');
    (f.properties as { attrs: Record<string, unknown> }).attrs = { '<b>': '"quoted"' };
    const html = devicePopupHtml(f.properties as never, 0);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).toContain('&#60;img');
    expect(html).toContain('data-action="send-command"');
    expect(escapeHtml(`'&`)).toBe('&#39;&#38;');
  });

  it('formats ages', () => {
    expect(formatAge(null)).toBe('never');
    expect(formatAge(0, 30_000)).toBe('30 s ago');
    expect(formatAge(0, 7_200_000)).toBe('2 h ago');
    expect([formatCount(999), formatCount(1234), formatCount(12_345)]).toEqual(['999', '1.2k', '12k']);
  });
});

describe('time-range', () => {
  it('round-trips datetime-local values and covers the last hours', () => {
    const ms = new Date(2026, 10, 25, 13, 7).getTime();
    expect(toDateTimeLocal(ms)).toMatch(/^2026-11-25T13:07$/);
    expect(fromDateTimeLocal(toDateTimeLocal(ms))).toBe(ms);
    expect(() => fromDateTimeLocal('yesterday')).toThrow();
    const r = lastHours(24, ms + 1);
    expect(r.toMs - r.fromMs).toBe(24 * 3600_000);
    expect(r.toMs).toBeGreaterThanOrEqual(ms + 1);
  });
});
