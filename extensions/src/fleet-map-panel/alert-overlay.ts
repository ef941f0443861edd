/**
 * What the alerts add to the fleet map: the geofence layer (a toggle; fill + outline in each
 * fence's colour, from `/fleet-alerts/geofences`) and a ring on every device with open
 * (unacknowledged) alerts (from `/fleet-alerts/devices`), refreshed with the map's own polls so
 * both follow new alerts, acknowledgements and edited fences without a reload.
 *
 * The toggle is a map button (next to zoom and "show all devices"), so the panel's toolbar stays as
 * it is. The rings are DOM markers, not a map layer: they stay visible when the device sits in a cluster,
 * carry the device id and an accessible label, and there are few of them (capped).
 */
import type { FeatureCollection } from 'geojson';
import type { GeoJSONSource, IControl, LayerSpecification } from 'maplibre-gl';
import * as maplibregl from 'maplibre-gl';
import type { AlertedDevice } from '../alerts-endpoint/index.js';
import { mapButton } from './map-button.js';

export const GEOFENCE_SOURCE = 'fleet-geofences';
export const GEOFENCE_LAYERS = { fill: 'fleet-geofences-fill', line: 'fleet-geofences-line' } as const;
/** Rings drawn at most (the devices with the newest open alerts first). */
export const MAX_ALERT_MARKS = 500;
/** Geofences are re-read every Nth refresh while shown (edits appear within that). */
const GEOFENCE_REFRESH_EVERY = 6;
const DEFAULT_COLOUR = '#e35169';

export type { AlertedDevice };

interface Api {
  get<T = unknown>(url: string, config?: { params?: Record<string, unknown> }): Promise<{ data: T }>;
}

export function geofenceLayers(): LayerSpecification[] {
  const colour = ['coalesce', ['get', 'color'], DEFAULT_COLOUR] as unknown as string;
  return [
    {
      id: GEOFENCE_LAYERS.fill,
      type: 'fill',
      source: GEOFENCE_SOURCE,
      layout: { visibility: 'none' },
      paint: { 'fill-color': colour, 'fill-opacity': 0.15 },
    },
    {
      id: GEOFENCE_LAYERS.line,
      type: 'line',
      source: GEOFENCE_SOURCE,
      layout: { visibility: 'none' },
      paint: { 'line-color': colour, 'line-width': 2 },
    },
  ];
}

/** The accessible label of a device's ring. Pure. */
export function alertMarkLabel(a: AlertedDevice, name: string | undefined): string {
  const who = name ?? `device ${a.device}`;
  return `${who}: ${a.open} open alert${a.open === 1 ? '' : 's'} — ${a.latest}`;
}

export class AlertOverlay {
  private marks = new Map<string, { marker: maplibregl.Marker; el: HTMLElement }>();
  private alerted: AlertedDevice[] = [];
  private geofencesOn = false;
  private refreshes = 0;
  private stopped = false;

  constructor(
    private readonly map: maplibregl.Map,
    private readonly api: Api,
    /** Where a device is now and its name, from the map's fleet state. */
    private readonly locate: (id: string) => { lngLat: [number, number]; name: string } | undefined,
    private readonly onError: (text: string) => void,
  ) {}

  /** Adds the geofence source and layers under the device layers (call once the style loaded). */
  setup(beforeLayer: string | undefined): void {
    this.map.addSource(GEOFENCE_SOURCE, { type: 'geojson', data: { type: 'FeatureCollection', features: [] } });
    for (const layer of geofenceLayers()) this.map.addLayer(layer, beforeLayer);
    if (this.geofencesOn) void this.showGeofences(true);
  }

  get geofencesShown(): boolean {
    return this.geofencesOn;
  }

  /** The map button that shows and hides the geofences (aria-pressed says which). */
  control(): IControl {
    return mapButton({
      className: 'toggle-geofences',
      title: 'Show geofences',
      toggle: true,
      // a hexagon: "zones"
      iconPath: 'M12 3l8 4.5v9L12 21l-8-4.5v-9z',
      onClick: (b) => {
        const on = !this.geofencesOn;
        b.setAttribute('aria-pressed', String(on));
        b.style.background = on ? '#e3516933' : '';
        void this.showGeofences(on);
      },
    });
  }

  async showGeofences(on: boolean): Promise<void> {
    this.geofencesOn = on;
    const container = this.map.getContainer();
    if (!this.map.getLayer(GEOFENCE_LAYERS.fill)) return;
    for (const id of Object.values(GEOFENCE_LAYERS))
      this.map.setLayoutProperty(id, 'visibility', on ? 'visible' : 'none');
    if (!on) {
      delete container.dataset.geofences;
      return;
    }
    await this.loadGeofences();
  }

  private async loadGeofences(): Promise<void> {
    try {
      const res = await this.api.get<FeatureCollection>('/fleet-alerts/geofences');
      if (this.stopped) return;
      (this.map.getSource(GEOFENCE_SOURCE) as GeoJSONSource | undefined)?.setData(res.data);
      // How many fences the layer holds: read by the browser test and useful when inspecting.
      if (this.geofencesOn) this.map.getContainer().dataset.geofences = String(res.data.features.length);
    } catch (err) {
      this.onError(`geofences could not be loaded: ${(err as Error).message}`);
    }
  }

  /** After each fleet poll: re-reads the devices with open alerts (and, now and then, the fences). */
  async refresh(): Promise<void> {
    if (this.stopped) return;
    this.refreshes++;
    if (this.geofencesOn && this.refreshes % GEOFENCE_REFRESH_EVERY === 0) void this.loadGeofences();
    try {
      const res = await this.api.get<{ data: AlertedDevice[] }>('/fleet-alerts/devices', {
        params: { limit: MAX_ALERT_MARKS },
      });
      if (this.stopped) return;
      this.alerted = res.data.data;
    } catch (err) {
      this.onError(`open alerts could not be loaded: ${(err as Error).message}`);
      return;
    }
    this.place();
  }

  /** Moves the rings to where the devices are now; adds and removes rings as alerts come and go. */
  place(): void {
    const keep = new Set<string>();
    for (const a of this.alerted) {
      const id = String(a.device);
      const at = this.locate(id);
      if (!at) continue;
      keep.add(id);
      let mark = this.marks.get(id);
      if (!mark) {
        const el = document.createElement('div');
        el.className = 'fleet-alert-mark';
        el.dataset.device = id;
        el.setAttribute('role', 'img');
        // Inline: scoped panel styles do not reach elements maplibre owns.
        Object.assign(el.style, {
          width: '26px',
          height: '26px',
          borderRadius: '50%',
          border: `3px solid ${DEFAULT_COLOUR}`,
          boxShadow: '0 0 0 2px rgba(255,255,255,0.8)',
          pointerEvents: 'none',
        });
        mark = { el, marker: new maplibregl.Marker({ element: el }).setLngLat(at.lngLat).addTo(this.map) };
        this.marks.set(id, mark);
      } else {
        mark.marker.setLngLat(at.lngLat);
      }
      mark.el.dataset.open = String(a.open);
      const label = alertMarkLabel(a, at.name);
      mark.el.setAttribute('aria-label', label);
      mark.el.title = label;
    }
    for (const [id, mark] of this.marks) {
      if (keep.has(id)) continue;
      mark.marker.remove();
      this.marks.delete(id);
    }
  }

  destroy(): void {
    this.stopped = true;
    for (const m of this.marks.values()) m.marker.remove();
    this.marks.clear();
  }
}
