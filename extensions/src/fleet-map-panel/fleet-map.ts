/**
 * The map: one maplibre instance, a clustered GeoJSON source fed by polling `/fleet/positions`,
 * the selected device's ring, and an optional track overlay with replay. Vue only mounts it and
 * wires the toolbar; this file owns the maplibre objects so the panel component stays thin.
 * Nothing here is reactive: 10k features behind Vue proxies cost seconds (see README, Performance).
 */

import type { FeatureCollection, Point } from 'geojson';
import type { GeoJSONSource, MapLayerMouseEvent } from 'maplibre-gl';
import * as maplibregl from 'maplibre-gl';
import 'maplibre-gl/dist/maplibre-gl.css';
import { formatClock } from '../shared/format/index.js';
import type { TrackResult, TrackSample } from '../shared/telematics/track.js';
import { AlertOverlay } from './alert-overlay.js';
import { provideClusterImages } from './cluster-images.js';
import { type DeviceProps, FleetState, type StatusCounts } from './fleet-state.js';
import { mapButton } from './map-button.js';
import {
  BASEMAP_SOURCE,
  type Basemap,
  basemapStyle,
  CLUSTER_PROPERTIES,
  DEVICE_SOURCE,
  deviceLayers,
  HIGHLIGHT_SOURCE,
  LAYERS,
  REPLAY_SOURCE,
  TRACK_SOURCE,
  trackLayers,
} from './map-style.js';
import { devicePopupHtml, stopPopupHtml } from './popup.js';
import { fetchPositions, type PositionsAnswer, rememberForPrefetch, studioApiRoot } from './positions-client.js';
import { type Replay, replayAt } from './replay.js';

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

export type DeviceAction = 'open-device' | 'send-command' | 'show-track';

export interface MapView {
  center: [number, number];
  zoom: number;
}

export interface FleetMapOptions {
  api: ApiClient;
  basemap: Basemap | null;
  pollSeconds?: number;
  movingSpeedKmh?: number;
  attributes?: string | null;
  clusterMaxZoom?: number;
  /** Where the user left the map last time; without it the map fits the fleet on first data. */
  initialView?: MapView | null;
  /** Studio URL of a device item (for the popup's "new tab" link). */
  deviceUrl: (id: string | number) => string;
  onAction?: (action: DeviceAction, device: DeviceProps) => void;
  onUpdate?: (u: { counts: StatusCounts; total: number; at: number }) => void;
  onError?: (text: string) => void;
  /** The user moved the map (to remember the view). */
  onViewChange?: (view: MapView) => void;
  /** Street tiles failed and none loaded: the outlines are what is visible. */
  onBasemapFailed?: () => void;
  /** The device the user clicked on the map. */
  onSelect?: (device: DeviceProps) => void;
}

/** The fleet endpoint's track answer. */
export type TrackResponse = TrackResult;

/**
 * Where the time to a drawn fleet goes, as `performance.now()` (ms since the page's navigation
 * started); read by `npm run bench:ui`.
 */
export interface LoadTimings {
  /** The Studio evaluated the extension bundle (the map's worker was prewarmed then). */
  bundleLoaded?: number;
  mapCreated?: number;
  styleLoaded?: number;
  /** The first positions request was issued. */
  fetchStarted?: number;
  /** Its parsed answer was in hand. */
  firstResponse?: number;
  /** Main-thread time spent in the first response: state update + setData call. */
  applyMs?: number;
  /** Main-thread time the panel spent on the first answer (legend counts, device list). */
  updateMs?: number;
  /** The first answer was the one prefetched at bundle load. */
  prefetched?: boolean;
  firstSetData?: number;
  /** The clustering worker had indexed the first positions. */
  clustered?: number;
  /** The first frame after the clustering worker answered and every device tile was in. */
  devicesDrawn?: number;
  /** The map was idle (basemap tiles included) with the first positions drawn. */
  firstDrawn?: number;
}

/** Set when the bundle loads (module scope: one per page). */
const bundleLoadedAt = typeof performance === 'undefined' ? undefined : performance.now();

/** Every Nth poll is a full one, so devices whose state changed without a new `last_seen_at` catch up. */
const FULL_POLL_EVERY = 6;
const SAMPLES = 3000;
const WORKER_PATH = 'fleet/maplibre-gl-worker.mjs';
/** The worker URL maplibre's worker pool was started with (null: not yet started by us). */
let workerUrl: string | null = null;

/** An absolute same-origin URL under the API root (the Studio may live under a sub-path). */
export function apiUrl(api: Pick<ApiClient, 'defaults'>, path: string): string {
  const base = new URL(api.defaults.baseURL || '/', window.location.href);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return new URL(path.replace(/^\//, ''), base).href;
}

/**
 * Starts maplibre's worker (download, parse, start-up) when the extension bundle loads, so that it
 * overlaps the Studio's own boot instead of delaying the first map's style. The API root is the
 * page path before `/admin`, as the Studio derives its own; outside the Studio nothing happens.
 */
export function prewarmMap(): void {
  const root = studioApiRoot();
  if (root === null || typeof Worker === 'undefined') return;
  workerUrl = apiUrl({ defaults: { baseURL: root } }, WORKER_PATH);
  maplibregl.setWorkerUrl(workerUrl);
  maplibregl.prewarm();
}

/** maplibre 6 loads its worker from a separate file; it is served same-origin by our endpoint. */
function useWorkerUrl(url: string): void {
  if (workerUrl === url) return;
  // prewarmed with another root (unusual sub-path setup): drop those workers, start from this URL
  if (workerUrl !== null) maplibregl.clearPrewarmedResources();
  maplibregl.setWorkerUrl(url);
  workerUrl = url;
}

export class FleetMap {
  readonly map: maplibregl.Map;
  readonly state = new FleetState();
  readonly timings: LoadTimings = { bundleLoaded: bundleLoadedAt, mapCreated: now() };
  private timer: ReturnType<typeof setTimeout> | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  private polls = 0;
  private etag: string | null = null;
  private stopped = false;
  private popup = new maplibregl.Popup({ closeButton: true, maxWidth: '340px' });
  private popupDevice: string | null = null;
  private popupHtml = '';
  private selectedId: string | null = null;
  private track: { device: string | number; fromMs: number; toMs: number; zoom: number } | null = null;
  private replay: Replay | null = null;
  private loaded: Promise<void>;
  private isLoaded = false;
  /**
   * Whether the view is placed (remembered, fitted to the fleet, framed on a track or a device):
   * the first data frames the whole fleet only when nothing placed it before that data arrived.
   */
  private fitted: boolean;
  /** A device asked to be focused before the data that holds it arrived (a link opened). */
  private pendingFocus: string | null = null;
  private tilesOk = 0;
  private basemapFailed = false;
  lastPollMs = 0;
  /** Geofence layer and open-alert rings (./alert-overlay.ts). */
  readonly alerts: AlertOverlay;

  constructor(
    container: HTMLElement,
    private readonly opts: FleetMapOptions,
  ) {
    useWorkerUrl(apiUrl(opts.api, WORKER_PATH));
    this.fitted = Boolean(opts.initialView);
    // The first poll goes out before anything else: creating the map (a WebGL context) and loading
    // its style take main-thread time the request can spend on the wire. Its answer is used only
    // after an await, when the map and the overlay below exist.
    void this.poll();
    this.map = new maplibregl.Map({
      container,
      style: basemapStyle(opts.basemap, apiUrl(opts.api, 'fleet/basemap/countries.geojson')),
      center: opts.initialView?.center ?? [10, 30],
      zoom: opts.initialView?.zoom ?? 1.3,
      attributionControl: { compact: true },
    });
    this.map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');
    this.map.addControl(
      mapButton({
        className: 'fleet-fit-all',
        title: 'Show all devices',
        // corner brackets: "frame everything"
        iconPath: 'M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5',
        onClick: () => this.fitFleet(300),
      }),
      'top-right',
    );
    this.watchBasemap();
    this.alerts = new AlertOverlay(
      this.map,
      opts.api,
      (id) => {
        const f = this.state.get(id);
        return f && { lngLat: f.geometry.coordinates as [number, number], name: f.properties.name };
      },
      (text) => opts.onError?.(text),
    );
    this.map.addControl(this.alerts.control(), 'top-right');
    provideClusterImages(this.map);
    // Our sources and layers go in as soon as the style is parsed ('style.load'), not at 'load',
    // which also waits for the basemap's tiles: the fleet is clustered while the tiles download.
    this.loaded = new Promise((resolve) =>
      this.map.once('style.load', () => {
        this.timings.styleLoaded = now();
        this.isLoaded = true;
        this.setup();
        resolve();
      }),
    );
    this.ticker = setInterval(() => this.refreshPopup(), 1000);
  }

  /** Street tiles that all fail (offline, blocked host) leave the outlines: say so once. */
  private watchBasemap(): void {
    if (!this.opts.basemap) return;
    this.map.on('sourcedata', (e) => {
      if (e.sourceId === BASEMAP_SOURCE && e.tile) this.tilesOk++;
    });
    this.map.on('error', (ev) => {
      const e = ev as unknown as { sourceId?: string; error?: { message?: string } };
      const raster = e.sourceId === BASEMAP_SOURCE || /tile|style/i.test(e.error?.message ?? '');
      if (!raster) return;
      if (this.tilesOk === 0 && !this.basemapFailed) {
        this.basemapFailed = true;
        this.opts.onBasemapFailed?.();
      }
    });
  }

  private setup(): void {
    const map = this.map;
    map.addSource(DEVICE_SOURCE, {
      type: 'geojson',
      data: emptyCollection(),
      cluster: true,
      clusterRadius: 50,
      clusterMaxZoom: this.opts.clusterMaxZoom ?? 12,
      clusterProperties: CLUSTER_PROPERTIES,
    });
    map.addSource(HIGHLIGHT_SOURCE, { type: 'geojson', data: emptyCollection() });
    map.addSource(TRACK_SOURCE, { type: 'geojson', data: emptyCollection() });
    map.addSource(REPLAY_SOURCE, { type: 'geojson', data: emptyCollection() });
    this.alerts.setup(undefined); // first: fences lie under tracks and devices
    for (const layer of trackLayers()) map.addLayer(layer);
    for (const layer of deviceLayers()) map.addLayer(layer);
    if (this.state.size > 0) this.pushData();

    map.on('click', LAYERS.clusters, (e) => void this.zoomIntoCluster(e));
    map.on('click', LAYERS.devices, (e) => {
      const id = e.features?.[0]?.properties.id as string | number | undefined;
      if (id === undefined) return;
      const device = this.state.get(id)?.properties;
      if (device) this.opts.onSelect?.(device);
      this.openPopup(id);
    });
    map.on('click', LAYERS.stops, (e) => {
      const f = e.features?.[0];
      if (f?.geometry.type !== 'Point') return;
      this.closePopup();
      this.popup
        .setLngLat(f.geometry.coordinates as [number, number])
        .setHTML(stopPopupHtml(f.properties as { from: number; to: number; durationS: number }))
        .addTo(map);
    });
    for (const layer of [LAYERS.clusters, LAYERS.devices, LAYERS.stops]) {
      map.on('mouseenter', layer, () => (map.getCanvas().style.cursor = 'pointer'));
      map.on('mouseleave', layer, () => (map.getCanvas().style.cursor = ''));
    }
    // Only moves the user made are remembered (fits and flights on first data are ours).
    map.on('moveend', (e: { originalEvent?: Event; fleetUser?: boolean }) => {
      if (e.originalEvent || e.fleetUser) {
        const c = map.getCenter();
        this.opts.onViewChange?.({ center: [c.lng, c.lat], zoom: map.getZoom() });
      }
    });
    // Tracks are simplified for the zoom they were fetched at: refetch when the zoom moved a lot.
    map.on('zoomend', () => {
      if (this.track && Math.abs(Math.round(map.getZoom()) - this.track.zoom) >= 2)
        void this.loadTrack(this.track, false);
    });
    this.popup.on('close', () => {
      this.popupDevice = null;
    });
  }

  /** A click on a cluster frames its members (not just the next zoom level). */
  private async zoomIntoCluster(e: MapLayerMouseEvent): Promise<void> {
    const f = e.features?.[0];
    if (f?.geometry.type !== 'Point') return;
    const source = this.map.getSource(DEVICE_SOURCE) as GeoJSONSource;
    const id = f.properties.cluster_id as number;
    const leaves = await source.getClusterLeaves(id, Number.POSITIVE_INFINITY, 0);
    const bounds = new maplibregl.LngLatBounds();
    for (const l of leaves) if (l.geometry.type === 'Point') bounds.extend(l.geometry.coordinates as [number, number]);
    const maxZoom = Math.max((this.opts.clusterMaxZoom ?? 12) + 1, 14);
    if (bounds.isEmpty() || bounds.getNorthEast().distanceTo(bounds.getSouthWest()) < 1) {
      const zoom = await source.getClusterExpansionZoom(id);
      this.map.easeTo(
        { center: f.geometry.coordinates as [number, number], zoom: Math.max(zoom, maxZoom) },
        { fleetUser: true },
      );
      return;
    }
    this.map.fitBounds(bounds, { padding: 60, maxZoom, duration: 400 }, { fleetUser: true });
  }

  private openPopup(id: string | number): void {
    const f = this.state.get(id);
    if (!f) return;
    this.popupDevice = String(id);
    this.popupHtml = '';
    this.popup.setLngLat(f.geometry.coordinates as [number, number]);
    this.refreshPopup();
    this.popup.addTo(this.map);
  }

  private closePopup(): void {
    this.popupDevice = null;
    this.popup.remove();
  }

  /** Re-renders the open device popup from the latest poll: the dot moves, the text follows. */
  private refreshPopup(): void {
    if (this.popupDevice === null) return;
    const f = this.state.get(this.popupDevice);
    if (!f) return;
    const html = devicePopupHtml(f.properties, this.opts.deviceUrl(f.properties.id));
    this.popup.setLngLat(f.geometry.coordinates as [number, number]);
    if (html === this.popupHtml) return;
    this.popupHtml = html;
    this.popup.setHTML(html);
    const device = f.properties;
    for (const a of this.popup.getElement()?.querySelectorAll<HTMLAnchorElement>('[data-action]') ?? []) {
      a.addEventListener('click', (ev) => {
        ev.preventDefault();
        this.opts.onAction?.(a.dataset.action as DeviceAction, device);
      });
    }
  }

  /** One poll: a delta since the cursor, or a full conditional (ETag) fetch every few polls. */
  async poll(): Promise<void> {
    if (this.stopped) return;
    const full = this.polls % FULL_POLL_EVERY === 0 || this.state.cursor === null;
    this.polls++;
    const t0 = performance.now();
    this.timings.fetchStarted ??= Math.round(t0);
    try {
      const params = new URLSearchParams({ moving: String(this.opts.movingSpeedKmh ?? 5) });
      if (this.opts.attributes) params.set('attributes', this.opts.attributes);
      if (!full) params.set('since', String(this.state.cursor));
      const query = params.toString();
      const url = `${apiUrl(this.opts.api, 'fleet/positions')}?${query}`;
      if (this.polls === 1) rememberForPrefetch(window.location.pathname, url);
      const res = await fetchPositions(url, query, full ? this.etag : null, (q, etag) =>
        this.positionsViaStudio(q, etag),
      );
      const first = this.timings.firstResponse === undefined;
      if (first) {
        this.timings.firstResponse = now();
        this.timings.prefetched = res.prefetched;
      }
      const a0 = performance.now();
      if (res.status === 200 && res.data) {
        if (full) {
          this.state.replace(res.data);
          this.etag = res.etag;
        } else {
          this.state.patch(res.data);
        }
        if (full || res.data.features.length > 0) this.pushData();
      }
      if (first) this.timings.applyMs = Math.round(performance.now() - a0);
      if (res.cursor !== null) this.state.cursor = res.cursor;
      this.lastPollMs = performance.now() - t0;
      const u0 = performance.now();
      this.opts.onUpdate?.({ counts: this.state.counts(), total: this.state.size, at: Date.now() });
      if (first) this.timings.updateMs = Math.round(performance.now() - u0);
      this.refreshPopup();
      this.moveHighlight();
      void this.alerts.refresh();
    } catch (err) {
      this.opts.onError?.(`update failed: ${(err as Error).message}`);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.poll(), (this.opts.pollSeconds ?? 5) * 1000);
  }

  /** The same poll through the Studio's API client, which refreshes an expired session first. */
  private async positionsViaStudio(query: string, etag: string | null): Promise<PositionsAnswer> {
    const res = await this.opts.api.get<FeatureCollection>(`/fleet/positions?${query}`, {
      headers: etag ? { 'If-None-Match': etag } : {},
      validateStatus: (s) => s === 200 || s === 304,
    });
    const cursor = Number(res.headers['x-fleet-cursor']);
    return {
      status: res.status === 304 ? 304 : 200,
      data: res.status === 200 ? res.data : null,
      etag: (res.headers.etag as string | undefined) ?? null,
      cursor: Number.isFinite(cursor) ? cursor : null,
      prefetched: false,
    };
  }

  /** Hands the fleet to the worker (which clusters it); before the style loaded, setup() does. */
  private pushData(): void {
    if (!this.isLoaded) return;
    const source = this.map.getSource(DEVICE_SOURCE) as GeoJSONSource | undefined;
    if (!source) return;
    const loaded = source.setData(this.state.drawn());
    if (this.timings.firstSetData === undefined) {
      this.timings.firstSetData = now();
      // The worker has clustered the data when setData resolves; the devices are drawn in the
      // first frame after every tile of the source was rebuilt from it.
      void loaded
        .then(() => {
          this.timings.clustered = now();
          const onData = () => {
            if (!this.map.isSourceLoaded(DEVICE_SOURCE)) return;
            this.map.off('sourcedata', onData);
            this.map.once('render', () => {
              this.timings.devicesDrawn = now();
            });
          };
          this.map.on('sourcedata', onData);
          onData();
        })
        .catch(() => {});
      this.map.once('idle', () => {
        this.timings.firstDrawn = now();
      });
    }
    const pending = this.pendingFocus;
    this.pendingFocus = null;
    if (pending !== null && this.focusDevice(pending)) return;
    if (!this.fitted && this.state.size > 0) this.fitFleet(0);
  }

  /** Frames every device; on first data (no remembered view) and from the "fit all" button. */
  fitFleet(duration: number): void {
    // a plain min/max pass: extending LngLatBounds made an object per device (10k on first data)
    const bounds = this.state.bounds();
    if (!bounds) return;
    this.map.fitBounds(bounds, { padding: 40, maxZoom: 12, duration }, { fleetUser: duration > 0 });
    this.fitted = true;
  }

  /** Centres on a device (zoomed in past clustering), rings it and opens its popup. */
  focusDevice(id: string | number): boolean {
    const f = this.state.get(id);
    if (!f) {
      // asked before the first data arrived (a link opened the dashboard): focus it on arrival
      if (this.timings.firstResponse === undefined) this.pendingFocus = String(id);
      return false;
    }
    this.pendingFocus = null;
    this.fitted = true;
    this.select(id);
    const zoom = Math.max(this.map.getZoom(), (this.opts.clusterMaxZoom ?? 12) + 1);
    this.map.easeTo({ center: f.geometry.coordinates as [number, number], zoom, duration: 500 }, { fleetUser: true });
    this.openPopup(id);
    return true;
  }

  /** Rings the device (or nobody). */
  select(id: string | number | null): void {
    this.selectedId = id === null ? null : String(id);
    this.moveHighlight();
  }

  private moveHighlight(): void {
    const source = this.map.getSource(HIGHLIGHT_SOURCE) as GeoJSONSource | undefined;
    if (!source) return;
    const f = this.selectedId === null ? undefined : this.state.get(this.selectedId);
    source.setData(f ? { type: 'FeatureCollection', features: [f] } : emptyCollection());
  }

  centreOn(lng: number, lat: number, zoom?: number): void {
    this.map.easeTo({ center: [lng, lat], zoom: zoom ?? Math.max(this.map.getZoom(), 14) }, { fleetUser: true });
    // Mark the point (a report's stop or event) with the replay marker: one orange dot on the map.
    this.setReplayMarker([lng, lat]);
  }

  async showTrack(device: string | number, fromMs: number, toMs: number): Promise<TrackResponse> {
    await this.loaded;
    this.closePopup();
    return this.loadTrack({ device, fromMs, toMs, zoom: Math.round(this.map.getZoom()) }, true);
  }

  private async loadTrack(
    t: { device: string | number; fromMs: number; toMs: number; zoom: number },
    fit: boolean,
  ): Promise<TrackResponse> {
    const res = await this.opts.api.get<TrackResponse>(`/fleet/devices/${encodeURIComponent(String(t.device))}/track`, {
      params: { from: t.fromMs, to: t.toMs, zoom: t.zoom, ...(fit ? { samples: SAMPLES } : {}) },
    });
    const fc = res.data;
    if (fit) {
      this.track = null; // no zoomend-triggered refetch while fitting
      this.replay = fc.samples && fc.samples.length > 0 ? { samples: fc.samples } : null;
      this.setReplayMarker(null);
    }
    (this.map.getSource(TRACK_SOURCE) as GeoJSONSource).setData({ type: 'FeatureCollection', features: fc.features });
    if (fit && fc.features.length > 0) {
      // The track frames the view: neither the first data nor a device focus asked for before it
      // may move the map away from it.
      this.fitted = true;
      this.pendingFocus = null;
      // Every vertex and every timed position: the whole track is in view, not just the lines.
      const bounds = new maplibregl.LngLatBounds();
      for (const f of fc.features) {
        if (f.geometry.type === 'Point') bounds.extend(f.geometry.coordinates as [number, number]);
        if (f.geometry.type === 'LineString')
          for (const c of f.geometry.coordinates) bounds.extend(c as [number, number]);
      }
      for (const s of fc.samples ?? []) bounds.extend([s[1], s[2]]);
      // the replay bar covers the bottom of the map: keep the track above it
      this.map.fitBounds(bounds, { padding: { top: 50, left: 50, right: 60, bottom: 110 }, maxZoom: 16, duration: 0 });
      // After fitting, the zoom differs: fetch once more at the new zoom without fitting again.
      const again = { ...t, zoom: Math.round(this.map.getZoom()) };
      if (again.zoom !== t.zoom) {
        const refetched = await this.loadTrack(again, false);
        return { ...refetched, samples: fc.samples };
      }
    }
    this.track = t;
    return fc;
  }

  /** The timed positions of the drawn track (for the replay timeline and hover). */
  get replaySamples(): TrackSample[] {
    return this.replay?.samples ?? [];
  }

  /** Puts the replay marker where the device was at `ms` (interpolated); returns that state. */
  replayTo(ms: number): { lng: number; lat: number; speed: number | null; t: number } | null {
    if (!this.replay) return null;
    const at = replayAt(this.replay.samples, ms);
    this.setReplayMarker(at ? [at.lng, at.lat] : null);
    return at;
  }

  private setReplayMarker(c: [number, number] | null): void {
    const source = this.map.getSource(REPLAY_SOURCE) as GeoJSONSource | undefined;
    source?.setData(
      c
        ? {
            type: 'FeatureCollection',
            features: [{ type: 'Feature', geometry: { type: 'Point', coordinates: c }, properties: {} }],
          }
        : emptyCollection(),
    );
  }

  /** The timed position nearest to a screen point, if the pointer is within `px` of it. */
  sampleNear(x: number, y: number, px = 12): { t: number; speed: number | null; label: string } | null {
    let best: TrackSample | null = null;
    let bestD = px * px;
    for (const s of this.replaySamples) {
      const p = this.map.project([s[1], s[2]]);
      const d = (p.x - x) ** 2 + (p.y - y) ** 2;
      if (d <= bestD) {
        best = s;
        bestD = d;
      }
    }
    if (!best) return null;
    const speed = best[3];
    return { t: best[0], speed, label: `${formatClock(best[0])} · ${speed ?? '–'} km/h` };
  }

  clearTrack(): void {
    this.track = null;
    this.replay = null;
    this.setReplayMarker(null);
    (this.map.getSource(TRACK_SOURCE) as GeoJSONSource | undefined)?.setData(emptyCollection());
  }

  resize(): void {
    this.map.resize();
  }

  destroy(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.ticker) clearInterval(this.ticker);
    this.alerts.destroy();
    this.popup.remove();
    this.map.remove();
  }
}

/** ms since the page's navigation started, for the load timings. */
function now(): number {
  return Math.round(performance.now());
}

function emptyCollection(): FeatureCollection<Point> {
  return { type: 'FeatureCollection', features: [] };
}
