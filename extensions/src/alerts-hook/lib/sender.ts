/**
 * The in-app and e-mail sender: claims `app` / `email` deliveries from the alert outbox (the same
 * rules as the daemon's webhook sender, from `@fleet/daemon/alerts`) and delivers them with
 * Directus's own services.
 *
 * - app: the `directus_notifications` row (the bell) is created in the same transaction that marks
 *   the delivery delivered, so a crash leaves either both or neither: exactly once. Created with
 *   ItemsService rather than NotificationsService, which would also send an e-mail it never reports
 *   on; e-mail is a delivery of its own.
 * - email: MailService (Directus's configured mailer); delivered when the SMTP server accepted the
 *   message. A crash between acceptance and the mark re-sends it after the lease (at least once);
 *   each message carries the delivery id as `X-Fleet-Delivery` for deduplication.
 */
import type { SchemaOverview } from '@directus/types';
import * as outbox from '@fleet/daemon/alerts';
import { type ClaimedDelivery, type DeliveryContext, WEBHOOK_HEADERS } from '@fleet/daemon/contract';
import type { Knex } from 'knex';

interface ItemsServiceLike {
  createOne(data: Record<string, unknown>, opts?: { emitEvents?: boolean }): Promise<unknown>;
}
interface MailServiceLike {
  send(data: Record<string, unknown>): Promise<unknown>;
}

export interface SenderContext {
  database: Knex;
  getSchema(): Promise<SchemaOverview>;
  services: {
    ItemsService: new (collection: string, opts: { knex: Knex; schema: SchemaOverview }) => ItemsServiceLike;
    MailService: new (opts: { knex: Knex; schema: SchemaOverview }) => MailServiceLike;
  };
  logger: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

export interface SendReport {
  delivered: number;
  failed: number;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

/** Subject and body of an alert notification. Pure. */
export function notificationText(c: DeliveryContext): { subject: string; message: string } {
  const p = c.payload;
  const lines = [
    p.message,
    '',
    `Device: ${p.device.name ?? p.device.imei} (${p.device.imei})`,
    `Event: ${p.event.type} at ${p.event.time}`,
  ];
  if (p.position) lines.push(`Position: ${p.position.coordinates[1]}, ${p.position.coordinates[0]}`);
  if (p.stale) lines.push('(stale data: the event is older than the stale age)');
  return { subject: p.message.slice(0, 255), message: lines.join('\n') };
}

async function deliverOne(
  ctx: SenderContext,
  schema: SchemaOverview,
  d: ClaimedDelivery,
  c: DeliveryContext,
): Promise<void> {
  const { subject, message } = notificationText(c);
  if (d.channel === 'app') {
    await ctx.database.transaction(async (trx) => {
      const notifications = new ctx.services.ItemsService('directus_notifications', { knex: trx, schema });
      await notifications.createOne({ recipient: d.target, subject, message, collection: 'alerts', item: d.alert });
      await outbox.markDelivered(trx, d);
    });
    return;
  }
  const mail = new ctx.services.MailService({ knex: ctx.database, schema });
  await mail.send({
    to: d.target,
    subject,
    headers: { [WEBHOOK_HEADERS.delivery]: d.id },
    template: { name: 'base', data: { html: `<p>${escapeHtml(message).replaceAll('\n', '<br>')}</p>` } },
  });
  await outbox.markDelivered(ctx.database, d);
}

/** One pass: claims due app/email deliveries and sends them; returns what happened. */
export async function sendDueNotifications(
  ctx: SenderContext,
  policy: outbox.OutboxPolicy,
  limit = 50,
): Promise<SendReport> {
  const claimed = await outbox.claimDeliveries(ctx.database, ['app', 'email'], limit, policy);
  const report: SendReport = { delivered: 0, failed: 0 };
  if (claimed.length === 0) return report;
  const schema = await ctx.getSchema();
  const payloads = await outbox.deliveryPayloads(ctx.database, claimed);
  for (const d of claimed) {
    const c = payloads.get(d.id);
    const log = { delivery: d.id, alert: d.alert, channel: d.channel, target: d.target, attempt: d.attempt };
    try {
      if (!c) throw new Error('alert, rule or device no longer exists');
      await deliverOne(ctx, schema, d, c);
      report.delivered++;
      ctx.logger.info(log, 'fleet alerts: delivered');
    } catch (err) {
      report.failed++;
      const retry = await outbox.markFailed(ctx.database, d, (err as Error).message ?? String(err), policy);
      ctx.logger.warn({ ...log, err, retry }, 'fleet alerts: delivery attempt failed');
    }
  }
  return report;
}
