/**
 * The `alerts` role: sends webhook deliveries from the outbox and runs the periodic alert sweep
 * (offline / no_fix, min durations, resolving). In-app notifications and e-mail are sent by the
 * Directus extension (they need Directus's services); both claim from the same outbox.
 *
 * The sender wakes on the NOTIFY that commits with new deliveries and polls as a safety net. Each
 * attempt is logged (delivery, alert, target, attempt, outcome, duration).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { Running } from '../cli.js';
import type { Config } from '../config.js';
import { type ClaimedDelivery, DELIVERIES_NOTIFY_CHANNEL } from '../contract/alerts.js';
import { connectDatabase, databaseConnection } from '../db.js';
import { sleep } from '../sleep.js';
import { DEFAULT_ALERTING, sweepAlerts } from './alerting.js';
import { claimDeliveries, deliveryPayloads, markDelivered, markFailed, outboxPolicy } from './outbox.js';
import { postWebhook } from './webhook.js';

export async function runAlerts(config: Config, logger: Logger): Promise<Running> {
  const log = logger.child({ role: 'alerts' });
  const knex = connectDatabase(config, { min: 1, max: Math.min(8, config.ALERT_CONCURRENCY + 2) }, 'fleet-alerts');
  const policy = outboxPolicy(config);
  const stopping = new AbortController();
  // A poke while the loop is not waiting (e.g. a NOTIFY during a claim that began before that
  // commit) is kept, so the loop claims once more instead of sleeping until the next poll.
  let wake: (() => void) | null = null;
  let poked = false;
  const poke = () => {
    const w = wake;
    wake = null;
    if (w) w();
    else poked = true;
  };

  const listener = new pg.Client({ ...databaseConnection(config), application_name: 'fleet-alerts' });
  listener.on('notification', (n) => {
    if (n.payload?.split(',').includes('webhook')) poke();
  });
  listener.on('error', (err) => log.warn({ err }, 'alerts: LISTEN connection failed; polling only'));
  await listener.connect();
  await listener.query(`LISTEN ${DELIVERIES_NOTIFY_CHANNEL}`);

  let inFlight = 0;
  const sendOne = async (d: ClaimedDelivery, url: string, ctx: Awaited<ReturnType<typeof deliveryPayloads>>) => {
    const started = Date.now();
    const c = ctx.get(d.id);
    const outcome = c
      ? await postWebhook(url, c.payload, c.secret, d.attempt, policy.timeoutMs)
      : ({ ok: false, error: 'alert, rule or device no longer exists' } as const);
    const attemptLog = { delivery: d.id, alert: d.alert, target: url, attempt: d.attempt, ms: Date.now() - started };
    if (outcome.ok) {
      await markDelivered(knex, d);
      log.info({ ...attemptLog, status: outcome.status }, 'webhook delivered');
    } else {
      const retry = await markFailed(knex, d, outcome.error, policy);
      log.warn(
        { ...attemptLog, error: outcome.error, retry },
        retry ? 'webhook attempt failed' : 'webhook failed for good',
      );
    }
  };

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      poked = false;
      const free = config.ALERT_CONCURRENCY - inFlight;
      let claimed: ClaimedDelivery[] = [];
      if (free > 0) {
        try {
          claimed = await claimDeliveries(knex, ['webhook'], free, policy);
        } catch (err) {
          log.warn({ err }, 'alerts: claiming deliveries failed');
          await sleep(policy.retryBaseMs, stopping.signal);
          continue;
        }
      }
      if (claimed.length > 0) {
        const ctx = await deliveryPayloads(knex, claimed).catch((err) => {
          log.warn({ err }, 'alerts: reading alerts failed');
          return new Map();
        });
        for (const d of claimed) {
          inFlight++;
          void sendOne(d, d.target, ctx)
            .catch((err) =>
              log.warn({ err, delivery: d.id }, 'alerts: recording an attempt failed (the lease will expire)'),
            )
            .finally(() => {
              inFlight--;
              poke();
            });
        }
        continue;
      }
      if (poked) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        void sleep(config.ALERT_POLL_MS, stopping.signal).then(() => {
          if (wake === resolve) poke();
        });
      });
    }
  })();

  const sweeper = (async () => {
    const options = { ...DEFAULT_ALERTING, staleAfterS: config.ALERT_STALE_AFTER_S };
    while (!stopping.signal.aborted) {
      try {
        const report = await sweepAlerts(knex, config.ALERT_TIME_ZONE, options);
        if (report.silences + report.delayed + report.resolved > 0) log.info({ report }, 'alerts: sweep');
      } catch (err) {
        log.warn({ err }, 'alerts: sweep failed');
      }
      await sleep(config.ALERT_SWEEP_INTERVAL_MS, stopping.signal);
    }
  })();

  log.info({ concurrency: config.ALERT_CONCURRENCY, policy }, 'alerts: sending webhooks');
  return {
    async stop() {
      stopping.abort();
      poke();
      await Promise.allSettled([loop, sweeper]);
      while (inFlight > 0) await sleep(20);
      await listener.end().catch(() => {});
      await knex.destroy();
    },
  };
}
