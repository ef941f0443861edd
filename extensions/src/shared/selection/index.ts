/**
 * One fleet selection shared by every panel of a dashboard (map, device list, track, command
 * console, reports). Panels are components of the same Studio app and this module is bundled once
 * into app.js, so a module-level store is shared; it holds no Vue state so plain code and tests use
 * it too.
 *
 * - `select(device)`: the device the admin is looking at (map click, list row, console search).
 * - `request(...)`: ask the map to do something visible: draw a device's track (or one trip) for a
 *   time range, or centre on a point. Requests are events, not state: a panel mounted later does
 *   not replay them.
 */

/** What panels need to name a device; panels may carry more fields, the store keeps these. */
export interface SelectedDevice {
  id: number | string;
  name: string | null;
  imei: string;
}

export type MapRequest =
  /** Draw the device's track between the two instants and fit it (a report's trip is one). */
  | { kind: 'track'; device: SelectedDevice; fromMs: number; toMs: number }
  /** Centre the map on a point (optionally at a zoom) and mark it. */
  | { kind: 'centre'; lng: number; lat: number; zoom?: number }
  /** Open the command console on this device. */
  | { kind: 'command'; device: SelectedDevice };

export type SelectionEvent =
  | { type: 'select'; device: SelectedDevice | null; source: string }
  | { type: 'request'; request: MapRequest; source: string };

type Listener = (e: SelectionEvent) => void;

export class FleetSelection {
  private current: SelectedDevice | null = null;
  private readonly listeners = new Set<Listener>();

  get device(): SelectedDevice | null {
    return this.current;
  }

  /** `source` names the panel that selected, so it can ignore its own echo. */
  select(device: SelectedDevice | null, source: string): void {
    const next = device ? { id: device.id, name: device.name, imei: device.imei } : null;
    if (sameDevice(this.current, next)) return;
    this.current = next;
    this.emit({ type: 'select', device: next, source });
  }

  request(request: MapRequest, source: string): void {
    if (request.kind !== 'centre') this.select(request.device, source);
    this.emit({ type: 'request', request, source });
  }

  /** Returns the unsubscribe function (call it in onBeforeUnmount). */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: SelectionEvent): void {
    for (const l of [...this.listeners]) l(e);
  }
}

function sameDevice(a: SelectedDevice | null, b: SelectedDevice | null): boolean {
  return a === b || (a !== null && b !== null && String(a.id) === String(b.id));
}

/** The dashboard's selection: import this, never construct another. */
export const fleetSelection = new FleetSelection();
