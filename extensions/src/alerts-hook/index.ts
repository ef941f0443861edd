/**
 * Alerts hook: sends the in-app notifications and e-mails of the alert outbox (schedule), keeps
 * users from editing alerts and deliveries outside the acknowledge endpoint, and refuses geofences
 * without a usable shape with a 400 (filters).
 * Registration only; the logic is in ./lib.
 */

import { defineHook } from '@directus/extensions-sdk';
import { OutboxSettings, outboxPolicy } from '@fleet/daemon/alerts';
import { geofenceShapeProblem } from '../shared/geofences/import';
import { AlertsForbiddenError, AlertsInvalidError } from './lib/errors';
import { type SenderContext, sendDueNotifications } from './lib/sender';

/** Rows with `webhook_secret` replaced by a mask (set or not), for non-admin readers. */
function maskSecrets(items: unknown): unknown {
  if (!Array.isArray(items)) return items;
  return items.map((row) =>
    row && typeof row === 'object' && 'webhook_secret' in row
      ? { ...row, webhook_secret: (row as { webhook_secret: unknown }).webhook_secret ? '********' : null }
      : row,
  );
}

function checkShape(payload: unknown, creating: boolean): unknown {
  const problem = geofenceShapeProblem(payload as Record<string, unknown>, creating);
  if (problem) throw new AlertsInvalidError({ reason: problem });
  return payload;
}

export default defineHook(({ filter, schedule }, ctx) => {
  const policy = outboxPolicy(OutboxSettings.parse(ctx.env));
  const cron = typeof ctx.env.FLEET_ALERTS_SEND_CRON === 'string' ? ctx.env.FLEET_ALERTS_SEND_CRON : '*/2 * * * * *';

  // Alerts are written by the daemon and changed only through /fleet-alerts (acknowledge), which
  // uses the service without accountability; any user write (even an admin's) is refused, so the
  // state machine and who-acknowledged stay true.
  for (const collection of ['alerts', 'alert_deliveries']) {
    for (const action of ['create', 'update', 'delete']) {
      filter(`${collection}.items.${action}`, (payload, _meta, { accountability }) => {
        if (accountability) {
          throw new AlertsForbiddenError({
            reason: `${collection} are written by the fleet daemon; acknowledge in the Alerts panel.`,
          });
        }
        return payload;
      });
    }
  }

  // Core tier permissions are whole-collection: readers of alert_rules would see webhook secrets.
  filter('alert_rules.items.read', (items, _meta, { accountability }) =>
    accountability && !accountability.admin ? maskSecrets(items) : items,
  );

  filter('geofences.items.create', (payload) => checkShape(payload, true));
  filter('geofences.items.update', (payload) => checkShape(payload, false));

  let running = false;
  schedule(cron, async () => {
    if (running) return;
    running = true;
    try {
      await sendDueNotifications(ctx as unknown as SenderContext, policy);
    } catch (err) {
      ctx.logger.warn({ err }, 'fleet alerts: sending notifications failed');
    } finally {
      running = false;
    }
  });
});
