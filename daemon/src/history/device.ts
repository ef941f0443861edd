/**
 * A batch of device windows, end to end inside one transaction: settings → reset points → read →
 * derive (pure, per device) → replace. Each step is one statement for the whole batch (reading
 * takes two when some windows come from the worker's WindowCache and others are read whole).
 */
import type { Knex } from 'knex';
import type { Logger } from '../observability/logger.js';
import type { WindowCache } from './cache.js';
import { deriveWindow } from './derive.js';
import type { DeviceKey, HistoryExtensions } from './hooks.js';
import { windowStartAt } from './rederive.js';
import { type DetectionSettings, effectiveSettings, fleetSettingsFromRow } from './settings.js';
import {
  loadSettingsRows,
  priorTotals,
  type ReplaceInput,
  replaceWindows,
  resetPoints,
  type WindowChanges,
  windowPositions,
} from './store.js';
import type { HistoryPosition } from './types.js';

export interface WindowRequest {
  device: DeviceKey;
  /** New records at or after this time (null: the device's whole history). */
  earliest: number | null;
  /** history_state.derived_in before this derivation (see WindowCache). */
  token?: string | null;
}

export interface DerivedWindows {
  changes: Map<DeviceKey, WindowChanges>;
  /** What each window was derived from (for the WindowCache once committed). */
  windows: { device: DeviceKey; dayFrom: number | null; positions: readonly HistoryPosition[] }[];
}

export async function deriveWindows(
  trx: Knex.Transaction,
  requests: readonly WindowRequest[],
  extensions: HistoryExtensions,
  logger?: Logger,
  cache?: WindowCache,
): Promise<DerivedWindows> {
  if (requests.length === 0) return { changes: new Map(), windows: [] };
  const rows = await loadSettingsRows(
    trx,
    requests.map((r) => r.device),
  );
  const fleet = fleetSettingsFromRow(rows.fleet);
  const settings = new Map<DeviceKey, DetectionSettings>();
  for (const { device } of requests) {
    try {
      settings.set(device, effectiveSettings(fleet, rows.overrides.get(device) ?? null));
    } catch (err) {
      // The extension validates overrides on save; one written around it must not stop history.
      logger?.warn({ device, err: String(err) }, 'invalid devices.history_settings ignored');
      settings.set(device, fleet);
    }
  }
  const bounded = requests.filter((r): r is { device: DeviceKey; earliest: number } => r.earliest !== null);
  const resets = await resetPoints(trx, bounded);
  const starts = requests.map((r) => ({
    device: r.device,
    start: windowStartAt(resets.get(r.device) ?? null, settings.get(r.device)!),
  }));
  // Windows the cache covers read from their earliest mark on; the others whole.
  const requestOf = new Map(requests.map((r) => [r.device, r]));
  const cached = new Set(
    cache === undefined
      ? []
      : requests
          .filter(
            (r, i) =>
              r.earliest !== null && cache.covers(r.device, r.token ?? null, r.earliest, starts[i]!.start.dayFrom),
          )
          .map((r) => r.device),
  );
  const fresh = await windowPositions(
    trx,
    requests.filter((r) => cached.has(r.device)).map((r) => ({ device: r.device, dayFrom: r.earliest })),
  );
  const whole = await windowPositions(
    trx,
    starts.filter((s) => !cached.has(s.device)).map((s) => ({ device: s.device, dayFrom: s.start.dayFrom })),
  );
  const positions = new Map<DeviceKey, HistoryPosition[]>(
    starts.map((s) => [
      s.device,
      cached.has(s.device)
        ? cache!.window(s.device, requestOf.get(s.device)!.earliest!, fresh.get(s.device)!, s.start.dayFrom)
        : whole.get(s.device)!,
    ]),
  );
  const priors = await priorTotals(trx, starts);
  const inputs: ReplaceInput[] = starts.map(({ device, start }) => {
    const p = positions.get(device)!;
    const s = settings.get(device)!;
    return {
      device,
      start,
      positions: p,
      settings: s,
      result: deriveWindow({ from: start.from, positions: p, settings: s, prior: priors.get(device)! }),
    };
  });
  return {
    changes: await replaceWindows(trx, inputs, extensions),
    windows: inputs.map((i) => ({ device: i.device, dayFrom: i.start.dayFrom, positions: i.positions })),
  };
}
