/**
 * Basemap style and the layers drawn on top of it. No layer has text: text needs glyph files,
 * which an offline deployment does not have (cluster counts are small images, see cluster-images.ts).
 */
import type {
  CircleLayerSpecification,
  ExpressionSpecification,
  LayerSpecification,
  LineLayerSpecification,
  SourceSpecification,
  StyleSpecification,
  SymbolLayerSpecification,
} from 'maplibre-gl';
import type { DeviceStatus } from '../shared/telematics/positions.js';
import { CLUSTER_IMAGE_PREFIX } from './cluster-images.js';

export type { DeviceStatus };
export const STATUS_COLOURS: Readonly<Record<DeviceStatus, string>> = {
  moving: '#2ecc71',
  online: '#3498db',
  offline: '#95a5a6',
};

/** A basemap as Directus describes one (project settings → Maps, `directus_settings.basemaps`). */
export interface Basemap {
  name: string;
  type: 'raster' | 'tile' | 'style';
  url: string;
  tileSize?: number | null;
  attribution?: string | null;
}

/** The Studio's own default, as its map layout and map interface use it. */
export const DIRECTUS_DEFAULT_BASEMAP: Basemap = {
  name: 'OpenStreetMap',
  type: 'raster',
  url: 'https://{a-c}.tile.openstreetmap.org/{z}/{x}/{y}.png',
  tileSize: 256,
  attribution: '© OpenStreetMap contributors',
};

/** Panel option value meaning "country outlines only, never ask a tile server". */
export const OFFLINE_BASEMAP = 'offline';

/**
 * Which basemap the panel draws:
 * - option empty: the basemap the Studio uses (the one picked in the map layout, from the project's
 *   basemaps, OpenStreetMap by default), so the panel matches the rest of the app;
 * - `offline`: none (outlines only);
 * - the name of one of the project's basemaps;
 * - a URL: with `{z}` raster XYZ tiles, otherwise a MapLibre style JSON.
 */
export function resolveBasemap(
  option: string | null | undefined,
  project: { basemaps?: Basemap[] | null; current?: string | null },
  attribution = '',
): Basemap | null {
  const value = (option ?? '').trim();
  if (value === OFFLINE_BASEMAP) return null;
  const all = [DIRECTUS_DEFAULT_BASEMAP, ...(project.basemaps ?? [])];
  if (!value) return all.find((b) => b.name === project.current) ?? all[0]!;
  const named = all.find((b) => b.name === value);
  if (named) return named;
  return {
    name: 'Custom',
    type: value.includes('{z}') ? 'raster' : 'style',
    url: value,
    tileSize: 256,
    attribution,
  };
}

/** `https://{a-c}.tile…` → three URLs, as the Studio expands them (also `{1-4}`). */
export function expandTileUrl(url: string): string[] {
  const letters = /\{([a-z])-([a-z])\}/.exec(url);
  if (letters) {
    const out: string[] = [];
    for (let c = letters[1]!.charCodeAt(0); c <= letters[2]!.charCodeAt(0); c++)
      out.push(url.replace(letters[0], String.fromCharCode(c)));
    return out;
  }
  const digits = /\{(\d+)-(\d+)\}/.exec(url);
  if (digits) {
    const out: string[] = [];
    for (let i = Number(digits[1]); i <= Number(digits[2]); i++) out.push(url.replace(digits[0], String(i)));
    return out;
  }
  return [url];
}

export const BASEMAP_SOURCE = 'basemap';
export const OUTLINE_LAYERS = ['countries-fill', 'countries-line'] as const;

/**
 * The map's style. Country outlines (served by our endpoint) always sit under the street tiles:
 * when no tile loads (no internet, blocked host) the outlines are what remains visible. A style-URL
 * basemap brings its own layers, so it is returned as the URL.
 */
export function basemapStyle(basemap: Basemap | null, countriesUrl: string): string | StyleSpecification {
  if (basemap?.type === 'style') return basemap.url;
  const sources: Record<string, SourceSpecification> = {
    countries: { type: 'geojson', data: countriesUrl, attribution: basemap ? '' : 'Natural Earth' },
  };
  const layers: LayerSpecification[] = [
    { id: 'background', type: 'background', paint: { 'background-color': '#dfe9f0' } },
    { id: OUTLINE_LAYERS[0], type: 'fill', source: 'countries', paint: { 'fill-color': '#f7f5f0' } },
    {
      id: OUTLINE_LAYERS[1],
      type: 'line',
      source: 'countries',
      paint: { 'line-color': '#a9b4bc', 'line-width': 0.6 },
    },
  ];
  if (basemap?.type === 'raster') {
    sources[BASEMAP_SOURCE] = {
      type: 'raster',
      tiles: expandTileUrl(basemap.url),
      tileSize: basemap.tileSize || 256,
      attribution: basemap.attribution ?? '',
      maxzoom: 19,
    };
  } else if (basemap?.type === 'tile') {
    sources[BASEMAP_SOURCE] = { type: 'raster', url: basemap.url, attribution: basemap.attribution ?? '' };
  }
  if (sources[BASEMAP_SOURCE]) layers.push({ id: BASEMAP_SOURCE, type: 'raster', source: BASEMAP_SOURCE });
  return { version: 8, sources, layers };
}

export const DEVICE_SOURCE = 'fleet-devices';
export const HIGHLIGHT_SOURCE = 'fleet-highlight';
export const TRACK_SOURCE = 'fleet-track';
export const REPLAY_SOURCE = 'fleet-replay';
export const LAYERS = {
  clusters: 'fleet-clusters',
  clusterCounts: 'fleet-cluster-counts',
  devices: 'fleet-devices',
  highlight: 'fleet-highlight',
  track: 'fleet-track-line',
  stops: 'fleet-track-stops',
  ends: 'fleet-track-ends',
  replay: 'fleet-replay-marker',
} as const;

/** Members per status inside each cluster (computed in the worker by maplibre's clustering). */
export const CLUSTER_PROPERTIES = {
  moving: ['+', ['case', ['==', ['get', 'status'], 'moving'], 1, 0]],
  online: ['+', ['case', ['==', ['get', 'status'], 'online'], 1, 0]],
  offline: ['+', ['case', ['==', ['get', 'status'], 'offline'], 1, 0]],
};

/**
 * A cluster takes the colour of the status most of its members have (ties go to the livelier),
 * and a green ring when any member is moving: a cluster of 172 parked devices reads grey.
 */
export const CLUSTER_COLOUR: ExpressionSpecification = [
  'case',
  ['all', ['>=', ['get', 'moving'], ['get', 'online']], ['>=', ['get', 'moving'], ['get', 'offline']]],
  STATUS_COLOURS.moving,
  ['>=', ['get', 'online'], ['get', 'offline']],
  STATUS_COLOURS.online,
  STATUS_COLOURS.offline,
];

export function deviceLayers(): (CircleLayerSpecification | SymbolLayerSpecification)[] {
  return [
    {
      id: LAYERS.clusters,
      type: 'circle',
      source: DEVICE_SOURCE,
      filter: ['has', 'point_count'],
      paint: {
        'circle-color': CLUSTER_COLOUR,
        'circle-opacity': 0.85,
        // size grows with the number of devices: 12 px for a few, 30 px for 1000+
        'circle-radius': ['interpolate', ['linear'], ['sqrt', ['get', 'point_count']], 1, 12, 32, 30],
        'circle-stroke-color': ['case', ['>', ['get', 'moving'], 0], STATUS_COLOURS.moving, '#ffffff'],
        'circle-stroke-width': ['case', ['>', ['get', 'moving'], 0], 3, 2],
      },
    },
    {
      // The count as a small image made on demand (no glyphs needed), drawn by the GPU like the
      // circles: no DOM element per cluster to move on every frame.
      id: LAYERS.clusterCounts,
      type: 'symbol',
      source: DEVICE_SOURCE,
      filter: ['has', 'point_count'],
      layout: {
        'icon-image': ['concat', CLUSTER_IMAGE_PREFIX, ['get', 'point_count_abbreviated']],
        'icon-allow-overlap': true,
        'icon-ignore-placement': true,
      },
    },
    {
      id: LAYERS.devices,
      type: 'circle',
      source: DEVICE_SOURCE,
      filter: ['!', ['has', 'point_count']],
      paint: {
        'circle-color': [
          'match',
          ['get', 'status'],
          'moving',
          STATUS_COLOURS.moving,
          'online',
          STATUS_COLOURS.online,
          STATUS_COLOURS.offline,
        ],
        'circle-radius': 6,
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': 1.5,
      },
    },
    {
      // The selected device: a ring drawn above clusters, so it shows even when its dot is clustered.
      id: LAYERS.highlight,
      type: 'circle',
      source: HIGHLIGHT_SOURCE,
      paint: {
        'circle-color': 'rgba(0,0,0,0)',
        'circle-radius': 12,
        'circle-stroke-color': '#e67e22',
        'circle-stroke-width': 3,
      },
    },
  ];
}

export function trackLayers(): (LineLayerSpecification | CircleLayerSpecification)[] {
  return [
    {
      id: LAYERS.track,
      type: 'line',
      source: TRACK_SOURCE,
      filter: ['==', ['get', 'kind'], 'track'],
      layout: { 'line-join': 'round', 'line-cap': 'round' },
      paint: { 'line-color': '#8e44ad', 'line-width': 3 },
    },
    {
      id: LAYERS.stops,
      type: 'circle',
      source: TRACK_SOURCE,
      filter: ['==', ['get', 'kind'], 'stop'],
      paint: { 'circle-color': '#f39c12', 'circle-radius': 7, 'circle-stroke-color': '#fff', 'circle-stroke-width': 2 },
    },
    {
      id: LAYERS.ends,
      type: 'circle',
      source: TRACK_SOURCE,
      filter: ['in', ['get', 'kind'], ['literal', ['start', 'end']]],
      paint: {
        'circle-color': ['match', ['get', 'kind'], 'start', '#27ae60', '#c0392b'],
        'circle-radius': 8,
        'circle-stroke-color': '#fff',
        'circle-stroke-width': 2,
      },
    },
    {
      id: LAYERS.replay,
      type: 'circle',
      source: REPLAY_SOURCE,
      paint: { 'circle-color': '#e67e22', 'circle-radius': 8, 'circle-stroke-color': '#fff', 'circle-stroke-width': 3 },
    },
  ];
}
