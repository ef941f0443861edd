/**
 * A batch of device windows, end to end inside one transaction: settings → reset points → read →
 * derive (pure, per device) → replace. Each step is one statement for the whole batch.
 */
import type { Knex } from 'knex';
import type { Logger } from '../observability/logger.js';
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

export interface WindowRequest {
  device: DeviceKey;
  /** New records at or after this time (null: the device's whole history). */
  earliest: number | null;
}

export async function deriveWindows(
  trx: Knex.Transaction,
  requests: readonly WindowRequest[],
  extensions: HistoryExtensions,
  logger?: Logger,
): Promise<Map<DeviceKey, WindowChanges>> {
  if (requests.length === 0) return new Map();
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
  const positions = await windowPositions(
    trx,
    starts.map((s) => ({ device: s.device, dayFrom: s.start.dayFrom })),
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
  return replaceWindows(trx, inputs, extensions);
}
