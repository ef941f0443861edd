import { describe, expect, it } from 'vitest';
import { FleetState } from './fleet-state.js';
import {
  basemapStyle,
  CLUSTER_COLOUR,
  DIRECTUS_DEFAULT_BASEMAP,
  deviceLayers,
  expandTileUrl,
  resolveBasemap,
  STATUS_COLOURS,
} from './map-style.js';
import { describeAttribute, devicePopupHtml, escapeHtml } from './popup.js';
import { REPLAY_GAP_MS, ReplayPlayer, replayAt } from './replay.js';
import { fromDateTimeLocal, lastHours, presetRange, toDateTimeLocal } from './time-range.js';
import { loadView, saveView } from './view-memory.js';

const feature = (id: number, status = 'online', name = `D${id}`, lon = id, seen = 0) => ({
  type: 'Feature' as const,
  id,
  geometry: { type: 'Point' as const, coordinates: [lon, 0] },
  properties: { id, name, imei: `35${id}`, status, speed: 0, heading: 0, fix: 0, seen, attrs: {} },
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
    expect(s.counts()).toEqual({ moving: 1, online: 3, offline: 0 });
    s.replace({ type: 'FeatureCollection', features: [feature(5)] });
    expect(s.drawn().features.map((f) => f.properties.id)).toEqual([5]);
  });

  it('hands the map only where each device is and its status, following every patch', () => {
    const s = new FleetState();
    s.replace({ type: 'FeatureCollection', features: [feature(1), feature(2)] });
    s.patch({ type: 'FeatureCollection', features: [feature(2, 'moving', 'D2', 9)] });
    expect(s.drawn().features).toEqual([
      {
        type: 'Feature',
        id: 1,
        geometry: { type: 'Point', coordinates: [1, 0] },
        properties: { id: 1, status: 'online' },
      },
      {
        type: 'Feature',
        id: 2,
        geometry: { type: 'Point', coordinates: [9, 0] },
        properties: { id: 2, status: 'moving' },
      },
    ]);
    s.replace({ type: 'FeatureCollection', features: [feature(5)] });
    expect(s.drawn().features.map((f) => f.properties.id)).toEqual([5]);
  });

  it('frames every device: west/south and east/north corners, none when empty', () => {
    const s = new FleetState();
    expect(s.bounds()).toBeNull();
    const at = (id: number, lon: number, lat: number) => ({
      ...feature(id),
      geometry: { type: 'Point' as const, coordinates: [lon, lat] },
    });
    s.replace({ type: 'FeatureCollection', features: [at(1, 10, 50), at(2, -3, 55), at(3, 4, 41)] });
    expect(s.bounds()).toEqual([
      [-3, 41],
      [10, 55],
    ]);
  });

  it('searches by name or IMEI and sorts the list by name, last update or status', () => {
    const s = new FleetState();
    s.replace({
      type: 'FeatureCollection',
      features: [
        feature(1, 'offline', 'Truck 10', 1, 100),
        feature(22, 'moving', 'Van', 2, 50),
        feature(3, 'online', 'Truck 9', 3, 300),
      ],
    });
    expect(s.search('tru').map((d) => d.id)).toEqual([3, 1]);
    expect(s.search('3522').map((d) => d.id)).toEqual([22]);
    expect(s.list('', 'seen').rows.map((d) => d.id)).toEqual([3, 1, 22]);
    expect(s.list('', 'status').rows.map((d) => d.id)).toEqual([22, 3, 1]);
    expect(s.list('', 'name', 2)).toMatchObject({ total: 3, rows: [{ id: 3 }, { id: 1 }] });
  });
});

describe('basemap', () => {
  it("uses the Studio's basemap: the one picked, else OpenStreetMap; 'offline' means outlines only", () => {
    const mine = { name: 'Mine', type: 'raster' as const, url: 'https://t.example/{z}/{x}/{y}.png' };
    expect(resolveBasemap('', {})).toEqual(DIRECTUS_DEFAULT_BASEMAP);
    expect(resolveBasemap(null, { basemaps: [mine], current: 'Mine' })).toEqual(mine);
    expect(resolveBasemap('Mine', { basemaps: [mine] })).toEqual(mine);
    expect(resolveBasemap('offline', { basemaps: [mine], current: 'Mine' })).toBeNull();
    expect(resolveBasemap('https://x.example/{z}/{x}/{y}.png', {}, '© X')).toMatchObject({
      type: 'raster',
      attribution: '© X',
    });
    expect(resolveBasemap('https://x.example/style.json', {})).toMatchObject({ type: 'style' });
    expect(expandTileUrl(DIRECTUS_DEFAULT_BASEMAP.url)).toEqual([
      'https://a.tile.openstreetmap.org/{z}/{x}/{y}.png',
      'https://b.tile.openstreetmap.org/{z}/{x}/{y}.png',
      'https://c.tile.openstreetmap.org/{z}/{x}/{y}.png',
    ]);
  });

  it('draws street tiles above the offline outlines, so the outlines remain when tiles fail', () => {
    const s = basemapStyle(DIRECTUS_DEFAULT_BASEMAP, 'http://h/fleet/basemap/countries.geojson');
    if (typeof s === 'string') throw new Error('expected a style object');
    expect(s.layers.map((l) => l.id)).toEqual(['background', 'countries-fill', 'countries-line', 'basemap']);
    expect(s.sources.basemap).toMatchObject({ type: 'raster', tileSize: 256 });
    expect(s.glyphs).toBeUndefined();
    const offline = basemapStyle(null, 'u') as Exclude<typeof s, string>;
    expect(offline.sources.basemap).toBeUndefined();
    expect(offline.sources.countries).toMatchObject({ type: 'geojson', data: 'u' });
    expect(basemapStyle({ name: 'S', type: 'style', url: 'https://s/style.json' }, 'u')).toBe('https://s/style.json');
  });

  it('has no layer that needs glyph files, and colours devices by status', () => {
    const layers = deviceLayers();
    for (const l of layers) expect(JSON.stringify(l)).not.toContain('text-field');
    expect(JSON.stringify(layers.find((l) => l.id === 'fleet-devices')!.paint)).toContain(STATUS_COLOURS.moving);
  });
});

/** Evaluates the cluster colour expression for given member counts (only the operators it uses). */
function clusterColour(p: Record<string, number>): string {
  const ev = (e: unknown): unknown => {
    if (!Array.isArray(e)) return e;
    const [op, ...a] = e as [string, ...unknown[]];
    if (op === 'get') return p[a[0] as string];
    if (op === 'all') return a.every((x) => ev(x));
    if (op === '>=') return (ev(a[0]) as number) >= (ev(a[1]) as number);
    if (op === 'case') {
      for (let i = 0; i + 1 < a.length; i += 2) if (ev(a[i])) return ev(a[i + 1]);
      return ev(a[a.length - 1]);
    }
    throw new Error(`operator ${op}`);
  };
  return ev(CLUSTER_COLOUR) as string;
}

describe('cluster colour', () => {
  it('takes the status most members have, not the liveliest one', () => {
    expect(clusterColour({ moving: 3, online: 47, offline: 172 })).toBe(STATUS_COLOURS.offline);
    expect(clusterColour({ moving: 10, online: 2, offline: 5 })).toBe(STATUS_COLOURS.moving);
    expect(clusterColour({ moving: 0, online: 5, offline: 5 })).toBe(STATUS_COLOURS.online);
  });
});

describe('popup', () => {
  it('escapes everything that comes from the database', () => {
    const f = feature(1, 'online', '<img src=x onerror=alert(1)>');
    (f.properties as { attrs: Record<string, unknown> }).attrs = { '<b>': '"quoted"' };
    const html = devicePopupHtml(f.properties as never, '/admin/content/devices/1', 0);
    expect(html).not.toContain('<img');
    expect(html).not.toContain('<b>');
    expect(html).toContain('&#60;img');
    expect(html).toContain('data-action="send-command"');
    expect(html).toContain('target="_blank"');
    expect(escapeHtml(`'&`)).toBe('&#39;&#38;');
  });

  it('shows attributes with their labels and units', () => {
    expect(describeAttribute('externalVoltage', 12.6)).toEqual({ label: 'External Voltage', text: '12.6 V' });
    expect(describeAttribute('ignition', true)).toEqual({ label: 'Ignition', text: 'on' });
    expect(describeAttribute('digitalOutput1', 0)).toEqual({ label: 'Digital Output 1', text: 'off' });
    expect(describeAttribute('totalOdometer', 123_456)).toEqual({ label: 'Total Odometer', text: '123.5 km' });
    expect(describeAttribute('sleepMode', 2)).toEqual({ label: 'Sleep Mode', text: 'deep sleep' });
    expect(describeAttribute('custom_thing', 'x')).toEqual({ label: 'custom_thing', text: 'x' });
  });
});

describe('time range', () => {
  it('round-trips datetime-local values with seconds and covers the presets', () => {
    const ms = new Date(2026, 10, 25, 13, 7, 9).getTime();
    expect(toDateTimeLocal(ms)).toBe('2026-11-25T13:07:09');
    expect(fromDateTimeLocal(toDateTimeLocal(ms))).toBe(ms);
    expect(fromDateTimeLocal('2026-11-25T13:07')).toBe(ms - 9000);
    expect(() => fromDateTimeLocal('yesterday')).toThrow();
    const r = lastHours(24, ms + 1);
    expect(r.toMs - r.fromMs).toBe(24 * 3600_000);
    expect(presetRange('today', ms).fromMs).toBe(new Date(2026, 10, 25).getTime());
    expect(presetRange('yesterday', ms)).toEqual({
      fromMs: new Date(2026, 10, 24).getTime(),
      toMs: new Date(2026, 10, 25).getTime() - 1000,
    });
    expect(presetRange('last7d', ms).fromMs).toBe(new Date(2026, 10, 19).getTime());
    expect(presetRange('lastHour', ms).toMs - presetRange('lastHour', ms).fromMs).toBe(3600_000);
  });
});

describe('replay', () => {
  const s: [number, number, number, number | null, number | null][] = [
    [0, 10, 50, 30, 0],
    [10_000, 11, 50, 60, 0],
    [10_000 + REPLAY_GAP_MS + 1, 20, 50, 0, 0],
  ];

  it('interpolates between positions and holds still across a reporting gap', () => {
    expect(replayAt(s, 5000)).toMatchObject({ lng: 10.5, lat: 50, speed: 30 });
    expect(replayAt(s, -1)).toMatchObject({ lng: 10 });
    expect(replayAt(s, 20_000)).toMatchObject({ lng: 11, speed: null });
    expect(replayAt(s, 1e12)).toMatchObject({ lng: 20 });
    expect(replayAt([], 0)).toBeNull();
  });

  it('plays at the chosen speed, pauses, and stops at the end', () => {
    const frames: ((t: number) => void)[] = [];
    const seen: number[] = [];
    const p = new ReplayPlayer({ fromMs: 0, toMs: 100_000 }, (ms) => seen.push(ms), {
      request: (cb) => frames.push(cb),
      cancel: () => {},
    });
    p.speed = 60;
    p.play(0);
    frames.shift()!(500); // half a second at 60× = 30 s of track
    expect(p.time).toBe(30_000);
    p.pause();
    expect(p.isPlaying).toBe(false);
    p.play(1000);
    frames.at(-1)!(3000);
    expect(p.time).toBe(100_000);
    expect(p.isPlaying).toBe(false);
    expect(seen.at(-1)).toBe(100_000);
  });
});

describe('remembered view', () => {
  it('keeps one view per key and ignores corrupt entries', () => {
    const m = new Map<string, string>();
    const store = { getItem: (k: string) => m.get(k) ?? null, setItem: (k: string, v: string) => void m.set(k, v) };
    saveView(store, 'a', { center: [10.123456789, 50.5], zoom: 7.123 });
    expect(loadView(store, 'a')).toEqual({ center: [10.12346, 50.5], zoom: 7.12 });
    expect(loadView(store, 'b')).toBeNull();
    m.set('c', '{"center":[1,200],"zoom":3}');
    m.set('d', 'not json');
    expect(loadView(store, 'c')).toBeNull();
    expect(loadView(store, 'd')).toBeNull();
  });
});
