/**
 * The panel's copy of the fleet: full polls replace it, delta polls (`since` cursor) patch it.
 * setData() then gets one FeatureCollection; the map's worker re-clusters it off the main thread.
 * Plain objects only: never put these in Vue reactive state (10k features deep-proxied cost seconds).
 */
import type { Feature, FeatureCollection, Point } from 'geojson';
import type { DevicePositionProps, DeviceStatus } from '../shared/telematics/positions.js';

/** The properties the fleet endpoint's positions carry. */
export type DeviceProps = DevicePositionProps;
export type DeviceFeature = Feature<Point, DeviceProps>;

export type StatusCounts = Record<DeviceStatus, number>;

export type DeviceSort = 'name' | 'seen' | 'status';

const collator = new Intl.Collator(undefined, { numeric: true });
const STATUS_ORDER: Record<DeviceStatus, number> = { moving: 0, online: 1, offline: 2 };

/** What the map's worker gets of a device: where, and the status its colour and clusters need. */
export type DrawnFeature = Feature<Point, Pick<DeviceProps, 'id' | 'status'>>;

export class FleetState {
  private byId = new Map<string, DeviceFeature>();
  /**
   * The same devices cut to what is drawn. Everything else (popups, list, clicks) is read here on
   * the main thread by id, so the worker need not get it: less to copy to it on every full poll,
   * and less for it to carry through clustering and tiling.
   */
  private drawnById = new Map<string, DrawnFeature>();
  /** Cursor of the last response, for the next delta poll. */
  cursor: number | null = null;

  get size(): number {
    return this.byId.size;
  }

  replace(fc: FeatureCollection): void {
    this.byId.clear();
    this.drawnById.clear();
    this.patch(fc);
  }

  /** Returns how many devices were added or changed. */
  patch(fc: FeatureCollection): number {
    let n = 0;
    for (const f of fc.features as DeviceFeature[]) {
      if (f.geometry?.type !== 'Point') continue;
      const { id, status } = f.properties;
      this.byId.set(String(id), f);
      this.drawnById.set(String(id), { type: 'Feature', id: f.id, geometry: f.geometry, properties: { id, status } });
      n++;
    }
    return n;
  }

  get(id: string | number): DeviceFeature | undefined {
    return this.byId.get(String(id));
  }

  /** The collection the map draws (see drawnById). */
  drawn(): FeatureCollection<Point, DrawnFeature['properties']> {
    return { type: 'FeatureCollection', features: [...this.drawnById.values()] };
  }

  /** [[west, south], [east, north]] around every device, or null when there is none. */
  bounds(): [[number, number], [number, number]] | null {
    let w = Number.POSITIVE_INFINITY;
    let s = Number.POSITIVE_INFINITY;
    let e = Number.NEGATIVE_INFINITY;
    let n = Number.NEGATIVE_INFINITY;
    for (const f of this.byId.values()) {
      const [lon, lat] = f.geometry.coordinates as [number, number];
      if (lon < w) w = lon;
      if (lon > e) e = lon;
      if (lat < s) s = lat;
      if (lat > n) n = lat;
    }
    return this.byId.size > 0
      ? [
          [w, s],
          [e, n],
        ]
      : null;
  }

  counts(): StatusCounts {
    const c: StatusCounts = { moving: 0, online: 0, offline: 0 };
    for (const f of this.byId.values()) c[f.properties.status]++;
    return c;
  }

  /**
   * Devices matching a name/IMEI search, sorted, at most `limit` (a list of 10k rows would cost
   * more to render than it helps); `total` is how many matched.
   */
  list(q: string, sort: DeviceSort = 'name', limit = 200): { rows: DeviceProps[]; total: number } {
    const needle = q.trim().toLowerCase();
    const all: DeviceProps[] = [];
    for (const f of this.byId.values()) {
      const p = f.properties;
      if (!needle || p.name.toLowerCase().includes(needle) || p.imei.includes(needle)) all.push(p);
    }
    const byName = (a: DeviceProps, b: DeviceProps) => collator.compare(a.name, b.name);
    const compare: Record<DeviceSort, (a: DeviceProps, b: DeviceProps) => number> = {
      name: byName,
      seen: (a, b) => (b.seen ?? 0) - (a.seen ?? 0) || byName(a, b),
      status: (a, b) => STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || byName(a, b),
    };
    all.sort(compare[sort]);
    return { rows: all.slice(0, limit), total: all.length };
  }

  /** Devices matching a name/IMEI search, for the track picker. */
  search(q: string, limit = 20): DeviceProps[] {
    return this.list(q, 'name', limit).rows;
  }
}
