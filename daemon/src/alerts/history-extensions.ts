/**
 * What alerting adds to the history derivation: the geofence deriver, the alerts after-events
 * hook and the devices rules watch (derived first). The `derive` worker and the `derive --from` command register the same pair, so a
 * recomputed window yields the same geofence events (same identities) and notifies no one again.
 */
import type { Config } from '../config.js';
import type { HistoryExtensions } from '../history/hooks.js';
import type { Logger } from '../observability/logger.js';
import { alertsAfterEvents, cachedRules, DEFAULT_ALERTING, watchedDevices } from './alerting.js';
import { CACHED_POSITIONS, geofenceDeriver, MeasurementCache } from './geofence-deriver.js';

export function alertingExtensions(config: Config, logger?: Logger): HistoryExtensions {
  // One read of the rules per TTL serves both the alerts hook and the watched devices.
  const rulesOf = cachedRules(config.ALERT_RULES_TTL_MS, (invalid) =>
    logger?.warn({ invalid }, 'alert rules skipped: invalid'),
  );
  return {
    eventDerivers: [
      geofenceDeriver(
        {
          marginM: config.GEOFENCE_MARGIN_M,
          dwellFixes: config.GEOFENCE_DWELL_FIXES,
          dwellS: config.GEOFENCE_DWELL_S,
        },
        new MeasurementCache(CACHED_POSITIONS, config.ALERT_RULES_TTL_MS),
      ),
    ],
    afterEvents: [alertsAfterEvents(rulesOf, { ...DEFAULT_ALERTING, staleAfterS: config.ALERT_STALE_AFTER_S })],
    // What a rule watches is derived before the rest of the fleet, so its alerts do not wait for a
    // whole pass over every marked device.
    urgentDevices: watchedDevices(rulesOf),
  };
}
