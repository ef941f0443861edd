/**
 * Basemap style and the layers drawn on top of it. No symbol/text layers anywhere: they need
 * glyph files, which an offline deployment does not have.
 */
import type { CircleLayerSpecification, LineLayerSpecification, StyleSpecification } from 'maplibre-gl';

export const STATUS_COLOURS = { moving: '#2ecc71', online: '#3498db', offline: '#95a5a6' } as const;

/**
 * The style for the panel's basemap option:
 * - empty: country outlines served by our endpoint (works with no internet);
 * - a URL containing `{z}`: raster tiles (XYZ);
 * - anything else: a maplibre style JSON URL.
 */
export function basemapStyle(
  option: string | null | undefined,
  countriesUrl: string,
  attribution = '',
): string | StyleSpecification {
  const url = (option ?? '').trim();
  if (url && !url.includes('{z}')) return url;
  const style: StyleSpecification = {
    version: 8,
    sources: {},
    layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#dfe9f0' } }],
  };
  if (url) {
    style.sources.basemap = { type: 'raster', tiles: [url], tileSize: 256, attribution, maxzoom: 19 };
    style.layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
  } else {
    style.sources.countries = { type: 'geojson', data: countriesUrl, attribution: attribution || 'Natural Earth' };
    style.layers.push(
      { id: 'countries-fill', type: 'fill', source: 'countries', paint: { 'fill-color': '#f7f5f0' } },
      {
        id: 'countries-line',
        type: 'line',
        source: 'countries',
        paint: { 'line-color': '#a9b4bc', 'line-width': 0.6 },
      },
    );
  }
  return style;
}

export const DEVICE_SOURCE = 'fleet-devices';
export const TRACK_SOURCE = 'fleet-track';
export const LAYERS = {
  clusters: 'fleet-clusters',
  devices: 'fleet-devices',
  track: 'fleet-track-line',
  stops: 'fleet-track-stops',
  ends: 'fleet-track-ends',
} as const;

/** Counts per status inside each cluster, so a cluster can take the colour of its liveliest member. */
export const CLUSTER_PROPERTIES = {
  moving: ['+', ['case', ['==', ['get', 'status'], 'moving'], 1, 0]],
  online: ['+', ['case', ['==', ['get', 'status'], 'online'], 1, 0]],
};

export function deviceLayers(): CircleLayerSpecification[] {
  return [
    {
      id: LAYERS.clusters,
      type: 'circle',
      source: DEVICE_SOURCE,
      filter: ['has', 'point_count'],
      paint: {
        'circle-color': [
          'case',
          ['>', ['get', 'moving'], 0],
          STATUS_COLOURS.moving,
          ['>', ['get', 'online'], 0],
          STATUS_COLOURS.online,
          STATUS_COLOURS.offline,
        ],
        'circle-opacity': 0.75,
        // size grows with the number of devices: 10 px for a few, 30 px for 1000+
        'circle-radius': ['interpolate', ['linear'], ['sqrt', ['get', 'point_count']], 1, 10, 32, 30],
        'circle-stroke-color': '#ffffff',
        'circle-stroke-width': 2,
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
  ];
}
