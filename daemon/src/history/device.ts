/** One device's window, end to end inside a transaction: settings → read → derive → replace. */
import type { Knex } from 'knex';
import type { Logger } from '../observability/logger.js';
import type { DeviceKey, HistoryExtensions } from './hooks.js';
import { rederive } from './rederive.js';
import { effectiveSettings, fleetSettingsFromRow } from './settings.js';
import { loadSettingsRows, replaceWindow, SqlHistoryReader, type WindowChanges } from './store.js';

export async function derivePositionsWindow(
  trx: Knex.Transaction,
  device: DeviceKey,
  earliest: number | null,
  extensions: HistoryExtensions,
  logger?: Logger,
): Promise<WindowChanges> {
  const rows = await loadSettingsRows(trx, device);
  const fleet = fleetSettingsFromRow(rows.fleet);
  let settings = fleet;
  try {
    settings = effectiveSettings(fleet, rows.override);
  } catch (err) {
    // The extension validates overrides on save; one written around it must not stop history.
    logger?.warn({ device, err: String(err) }, 'invalid devices.history_settings ignored');
  }
  const { start, result, positions } = await rederive(new SqlHistoryReader(trx, device), earliest, settings);
  return replaceWindow(trx, { device, start, result, positions, settings }, extensions);
}
