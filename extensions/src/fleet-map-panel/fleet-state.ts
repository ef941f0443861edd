/**
 * The panel's copy of the fleet: full polls replace it, delta polls (`since` cursor) patch it.
 * setData() then gets one FeatureCollection; the map's worker re-clusters it off the main thread.
 */
import type { Feature, FeatureCollection, Point } from 'geojson';

export interface DeviceProps {
  id: number | string;
  name: string;
  imei: string;
  status: 'moving' | 'online' | 'offline';
  speed: number | null;
  heading: number | null;
  fix: number | null;
  seen: number | null;
  attrs: Record<string, unknown>;
}
export type DeviceFeature = Feature<Point, DeviceProps>;

export class FleetState {
  private byId = new Map<string, DeviceFeature>();
  /** Cursor of the last response, for the next delta poll. */
  cursor: number | null = null;

  get size(): number {
    return this.byId.size;
  }

  replace(fc: FeatureCollection): void {
    this.byId.clear();
    this.patch(fc);
  }

  /** Returns how many devices were added or changed. */
  patch(fc: FeatureCollection): number {
    let n = 0;
    for (const f of fc.features as DeviceFeature[]) {
      if (f.geometry?.type !== 'Point') continue;
      this.byId.set(String(f.properties.id), f);
      n++;
    }
    return n;
  }

  get(id: string | number): DeviceFeature | undefined {
    return this.byId.get(String(id));
  }

  collection(): FeatureCollection<Point, DeviceProps> {
    return { type: 'FeatureCollection', features: [...this.byId.values()] };
  }

  /** Devices matching a name/IMEI search, for the track picker. */
  search(q: string, limit = 20): DeviceProps[] {
    const needle = q.trim().toLowerCase();
    const out: DeviceProps[] = [];
    for (const f of this.byId.values()) {
      const p = f.properties;
      if (!needle || p.name.toLowerCase().includes(needle) || p.imei.includes(needle)) out.push(p);
      if (out.length >= limit) break;
    }
    return out;
  }
}
