/**
 * The map view a user left the panel at, kept in the browser per user and panel, so the next visit
 * opens there instead of re-fitting the fleet.
 */
import type { MapView } from './fleet-map.js';

type KeyValue = Pick<Storage, 'getItem' | 'setItem'>;

export function loadView(store: KeyValue, key: string): MapView | null {
  try {
    const v = JSON.parse(store.getItem(key) ?? 'null') as MapView | null;
    if (
      v &&
      Array.isArray(v.center) &&
      v.center.length === 2 &&
      v.center.every((n) => Number.isFinite(n)) &&
      Math.abs(v.center[1]) <= 90 &&
      Number.isFinite(v.zoom) &&
      v.zoom >= 0 &&
      v.zoom <= 24
    )
      return { center: [v.center[0], v.center[1]], zoom: v.zoom };
  } catch {
    // a corrupt entry is the same as none
  }
  return null;
}

export function saveView(store: KeyValue, key: string, view: MapView): void {
  try {
    store.setItem(
      key,
      JSON.stringify({
        center: view.center.map((n) => Math.round(n * 1e5) / 1e5),
        zoom: Math.round(view.zoom * 100) / 100,
      }),
    );
  } catch {
    // storage full or disabled: the map still works, it just forgets
  }
}
