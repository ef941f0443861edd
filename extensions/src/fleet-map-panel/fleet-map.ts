/**
 * The map: one maplibre instance, a clustered GeoJSON source fed by polling `/fleet/positions`,
 * and an optional track overlay. Vue only mounts it and wires the toolbar; this file owns the
 * maplibre objects so the panel component stays thin.
 */

import type { GeoJSONSource, MapLayerMouseEvent } from 'maplibre-gl';
import * as maplibregl from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';
import type { FeatureCollection } from 'geojson';
import { type DeviceProps, FleetState } from './fleet-state.js';
import {
  basemapStyle,
  CLUSTER_PROPERTIES,
  DEVICE_SOURCE,
  deviceLayers,
  LAYERS,
  TRACK_SOURCE,
  trackLayers,
} from './map-style.js';
import { devicePopupHtml, formatCount, stopPopupHtml } from './popup.js';

/** The slice of the Studio's axios instance we use. */
export interface ApiClient {
  get<T = unknown>(
    url: string,
    config?: {
      params?: Record<string, unknown>;
      headers?: Record<string, string>;
      validateStatus?: (s: number) => boolean;
    },
  ): Promise<{ status: number; data: T; headers: Record<string, unknown> }>;
  defaults: { baseURL?: string };
}

export interface FleetMapOptions {
  api: ApiClient;
  basemap?: string | null;
  attribution?: string | null;
  pollSeconds?: number;
  movingSpeedKmh?: number;
  attributes?: string | null;
  clusterMaxZoom?: number;
  onAction?: (action: 'open-device' | 'send-command' | 'show-track', device: DeviceProps) => void;
  onStatus?: (text: string) => void;
}

/** Every Nth poll is a full one, so devices whose state changed without a new `last_seen_at` catch up. */
const FULL_POLL_EVERY = 6;
let workerUrlSet = false;

/** An absolute same-origin URL under the API root (the Studio may live under a sub-path). */
export function apiUrl(api: ApiClient, path: string): string {
  const base = new URL(api.defaults.baseURL || '/', window.location.href);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL(path.replace(/^\//, ''), base).href;
}

export class FleetMap {
  readonly map: maplibregl.Map;
  readonly state = new FleetState();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private polls = 0;
  private etag: string | null = null;
  private stopped = false;
  private popup = new maplibregl.Popup({ closeButton: true, maxWidth: '320px' });
  private track: { device: string | number; fromMs: number; toMs: number; zoom: number } | null = null;
  private loaded: Promise<void>;
  private fitted = false;
  lastPollMs = 0;

  constructor(
    container: HTMLElement,
    private readonly opts: FleetMapOptions,
  ) {
    if (!workerUrlSet) {
      // maplibre 6 loads its worker from a separate file; serve it same-origin from our endpoint.
      maplibregl.setWorkerUrl(apiUrl(opts.api, 'fleet/maplibre-gl-worker.mjs'));
      workerUrlSet = true;
    }
    this.map = new maplibregl.Map({
      container,
      style: basemapStyle(opts.basemap, apiUrl(opts.api, 'fleet/basemap/countries.geojson'), opts.attribution ?? ''),
      center: [10, 30],
      zoom: 1.3,
      attributionControl: { compact: true },
    });
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    this.loaded = new Promise((resolve) => this.map.once('load', () => resolve()));
    this.loaded.then(() => this.setup());
  }

  private setup(): void {
    const map = this.map;
    map.addSource(DEVICE_SOURCE, {
      type: 'geojson',
      data: this.state.collection(),
      cluster: true,
      clusterRadius: 50,
      clusterMaxZoom: this.opts.clusterMaxZoom ?? 12,
      clusterProperties: CLUSTER_PROPERTIES,
    });
    map.addSource(TRACK_SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    for (const layer of trackLayers()) map.addLayer(layer);
    for (const layer of deviceLayers()) map.addLayer(layer);

    map.on('click', LAYERS.clusters, (e) => this.zoomIntoCluster(e));
    // Cluster counts as DOM labels: a text layer would need glyph files, which offline installs lack.
    map.on('idle', () => this.updateClusterLabels());
    map.on('click', LAYERS.devices, (e) => this.openDevicePopup(e));
    map.on('click', LAYERS.stops, (e) => {
      const f = e.features?.[0];
      if (f?.geometry.type !== 'Point') return;
      this.popup
        .setLngLat(f.geometry.coordinates as [number, number])
        .setHTML(stopPopupHtml(f.properties as { from: number; to: number; durationS: number }))
        .addTo(map);
    });
    for (const layer of [LAYERS.clusters, LAYERS.devices, LAYERS.stops]) {
      map.on('mouseenter', layer, () => (map.getCanvas().style.cursor = 'pointer'));
      map.on('mouseleave', layer, () => (map.getCanvas().style.cursor = ''));
    }
    // Tracks are simplified for the zoom they were fetched at: refetch when the zoom moved a lot.
    map.on('zoomend', () => {
      if (this.track && Math.abs(Math.round(map.getZoom()) - this.track.zoom) >= 2)
        void this.loadTrack(this.track, false);
    });
    void this.poll();
  }

  private clusterLabels = new Map<number, maplibregl.Marker>();

  /** One small label per cluster on screen; rebuilt when the map settles (not every frame). */
  private updateClusterLabels(): void {
    const seen = new Set<number>();
    for (const f of this.map.querySourceFeatures(DEVICE_SOURCE, { filter: ['has', 'point_count'] })) {
      const id = f.properties.cluster_id as number;
      if (seen.has(id) || f.geometry.type !== 'Point') continue;
      seen.add(id);
      const lngLat = f.geometry.coordinates as [number, number];
      const text = formatCount(f.properties.point_count as number);
      const existing = this.clusterLabels.get(id);
      if (existing) {
        existing.setLngLat(lngLat);
        existing.getElement().textContent = text;
        continue;
      }
      const el = document.createElement('div');
      el.className = 'fleet-cluster-label';
      el.textContent = text;
      this.clusterLabels.set(id, new maplibregl.Marker({ element: el }).setLngLat(lngLat).addTo(this.map));
    }
    for (const [id, marker] of this.clusterLabels) {
      if (!seen.has(id)) {
        marker.remove();
        this.clusterLabels.delete(id);
      }
    }
  }

  private async zoomIntoCluster(e: MapLayerMouseEvent): Promise<void> {
    const f = e.features?.[0];
    if (f?.geometry.type !== 'Point') return;
    const source = this.map.getSource(DEVICE_SOURCE) as GeoJSONSource;
    const zoom = await source.getClusterExpansionZoom(f.properties.cluster_id as number);
    this.map.easeTo({ center: f.geometry.coordinates as [number, number], zoom });
  }

  private openDevicePopup(e: MapLayerMouseEvent): void {
    const f = e.features?.[0];
    if (f?.geometry.type !== 'Point') return;
    // Rendered features carry flattened properties; use the full record from our state.
    const device = this.state.get(f.properties.id as string)?.properties;
    if (!device) return;
    this.popup
      .setLngLat(f.geometry.coordinates as [number, number])
      .setHTML(devicePopupHtml(device))
      .addTo(this.map);
    const el = this.popup.getElement();
    for (const a of el?.querySelectorAll<HTMLAnchorElement>('[data-action]') ?? []) {
      a.addEventListener('click', (ev) => {
        ev.preventDefault();
        this.opts.onAction?.(a.dataset.action as 'open-device', device);
      });
    }
  }

  /** One poll: a delta since the cursor, or a full conditional (ETag) fetch every few polls. */
  async poll(): Promise<void> {
    if (this.stopped) return;
    const full = this.polls % FULL_POLL_EVERY === 0 || this.state.cursor === null;
    this.polls++;
    const t0 = performance.now();
    try {
      const params: Record<string, unknown> = { moving: this.opts.movingSpeedKmh ?? 5 };
      if (this.opts.attributes) params.attributes = this.opts.attributes;
      if (!full) params.since = this.state.cursor;
      const res = await this.opts.api.get<FeatureCollection>('/fleet/positions', {
        params,
        headers: full && this.etag ? { 'If-None-Match': this.etag } : {},
        validateStatus: (s) => s === 200 || s === 304,
      });
      const cursor = Number(res.headers['x-fleet-cursor']);
      if (res.status === 200) {
        if (full) {
          this.state.replace(res.data);
          this.etag = (res.headers.etag as string) ?? null;
        } else {
          this.state.patch(res.data);
        }
        if (full || res.data.features.length > 0) {
          (this.map.getSource(DEVICE_SOURCE) as GeoJSONSource | undefined)?.setData(this.state.collection());
        }
        if (!this.fitted && this.state.size > 0) this.fitFleet();
      }
      if (Number.isFinite(cursor)) this.state.cursor = cursor;
      this.lastPollMs = performance.now() - t0;
      this.opts.onStatus?.(`${this.state.size} devices · updated ${new Date().toLocaleTimeString()}`);
    } catch (err) {
      this.opts.onStatus?.(`update failed: ${(err as Error).message}`);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.poll(), (this.opts.pollSeconds ?? 5) * 1000);
  }

  /** Frames the whole fleet once, on the first data; after that the user owns the view. */
  private fitFleet(): void {
    const bounds = new maplibregl.LngLatBounds();
    for (const f of this.state.collection().features) bounds.extend(f.geometry.coordinates as [number, number]);
    this.map.fitBounds(bounds, { padding: 40, maxZoom: 10, duration: 0 });
    this.fitted = true;
  }

  async showTrack(
    device: string | number,
    fromMs: number,
    toMs: number,
  ): Promise<FeatureCollection & { meta?: unknown }> {
    await this.loaded;
    return this.loadTrack({ device, fromMs, toMs, zoom: Math.round(this.map.getZoom()) }, true);
  }

  private async loadTrack(
    t: { device: string | number; fromMs: number; toMs: number; zoom: number },
    fit: boolean,
  ): Promise<FeatureCollection & { meta?: unknown }> {
    const res = await this.opts.api.get<FeatureCollection & { meta?: unknown }>(
      `/fleet/devices/${encodeURIComponent(String(t.device))}/track`,
      { params: { from: t.fromMs, to: t.toMs, zoom: t.zoom } },
    );
    const fc = res.data;
    if (fit) this.track = null; // no zoomend-triggered refetch while fitting
    (this.map.getSource(TRACK_SOURCE) as GeoJSONSource).setData(fc);
    if (fit && fc.features.length > 0) {
      const bounds = new maplibregl.LngLatBounds();
      for (const f of fc.features) {
        if (f.geometry.type === 'Point') bounds.extend(f.geometry.coordinates as [number, number]);
        if (f.geometry.type === 'LineString')
          for (const c of f.geometry.coordinates) bounds.extend(c as [number, number]);
      }
      this.map.fitBounds(bounds, { padding: 40, maxZoom: 16, duration: 0 });
      // After fitting, the zoom differs: fetch once more at the new zoom without fitting again.
      this.track = { ...t, zoom: Math.round(this.map.getZoom()) };
      if (this.track.zoom !== t.zoom) return this.loadTrack(this.track, false);
    }
    this.track = t;
    return fc;
  }

  clearTrack(): void {
    this.track = null;
    (this.map.getSource(TRACK_SOURCE) as GeoJSONSource | undefined)?.setData({
      type: 'FeatureCollection',
      features: [],
    });
  }

  resize(): void {
    this.map.resize();
  }

  destroy(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.popup.remove();
    for (const m of this.clusterLabels.values()) m.remove();
    this.map.remove();
  }
}
