/**
 * The delivery outbox (`alert_deliveries`): how a sender claims due deliveries and records each
 * attempt. Used by the daemon's webhook sender and by the extension's in-app / e-mail sender, so
 * both follow one set of rules:
 *
 * - claim: due rows (`pending`, or `sending` whose lease ran out because its sender died) are taken
 *   with FOR UPDATE SKIP LOCKED, so concurrent senders never take the same row, and leased
 *   (`sending`, next_attempt_at = now + lease) with the attempt counted;
 * - at most `perTarget` deliveries to one target are in flight, so a dead or slow endpoint holds
 *   at most that many slots and delays nothing else;
 * - delivered: final, whoever marks it; failed attempt: back to `pending` after a backoff, or
 *   `failed` after the last attempt — only by the holder of that attempt (attempts = claimed).
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import type { ClaimedDelivery, DeliveryChannel, DeliveryContext } from '../contract/alerts.js';

export interface OutboxPolicy {
  /** How long one attempt may take (webhook timeout; the lease is longer). */
  timeoutMs: number;
  /** How long a claimed delivery stays ours before another sender may take it. */
  leaseMs: number;
  maxAttempts: number;
  /** Delay after the first failure; doubled after each further one, capped by retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Deliveries to one target in flight at once. */
  perTarget: number;
}

const int = (def: number, min: number) => z.coerce.number().int().min(min).default(def);

/**
 * The outbox settings, read by the daemon (its config) and by the extension (Directus env) from
 * the same variables.
 */
export const OutboxSettings = z.object({
  ALERT_WEBHOOK_TIMEOUT_MS: int(5000, 100),
  ALERT_MAX_ATTEMPTS: int(10, 1),
  ALERT_RETRY_BASE_MS: int(5000, 10),
  ALERT_RETRY_MAX_MS: int(15 * 60_000, 10),
  ALERT_PER_TARGET: int(8, 1),
});
export type OutboxSettings = z.infer<typeof OutboxSettings>;

export function outboxPolicy(s: OutboxSettings): OutboxPolicy {
  return {
    timeoutMs: s.ALERT_WEBHOOK_TIMEOUT_MS,
    // A live sender finishes (or times out) and records the attempt well before its lease ends.
    leaseMs: s.ALERT_WEBHOOK_TIMEOUT_MS * 2 + 1000,
    maxAttempts: s.ALERT_MAX_ATTEMPTS,
    retryBaseMs: s.ALERT_RETRY_BASE_MS,
    retryMaxMs: s.ALERT_RETRY_MAX_MS,
    perTarget: s.ALERT_PER_TARGET,
  };
}

/** Delay before attempt `attempt + 1` after attempt `attempt` failed. Pure. */
export function retryDelayMs(attempt: number, policy: Pick<OutboxPolicy, 'retryBaseMs' | 'retryMaxMs'>): number {
  return Math.min(policy.retryMaxMs, policy.retryBaseMs * 2 ** Math.max(0, attempt - 1));
}

type Db = Knex | Knex.Transaction;

export async function claimDeliveries(
  db: Db,
  channels: readonly DeliveryChannel[],
  limit: number,
  policy: Pick<OutboxPolicy, 'leaseMs' | 'perTarget'>,
): Promise<ClaimedDelivery[]> {
  // Per target, the due rows in order, as many as its live leases leave room for: a burst to one
  // target is claimed a wave of perTarget at a time, and the rows beyond stay untouched.
  const res = await db.raw<{
    rows: Array<{ id: string; alert: string; channel: DeliveryChannel; target: string; attempts: number }>;
  }>(
    `WITH busy AS (
       SELECT target, count(*) AS n FROM alert_deliveries
        WHERE status = 'sending' AND next_attempt_at > now() AND channel = ANY(?::text[])
        GROUP BY target
     ), ranked AS (
       SELECT id, target, row_number() OVER (PARTITION BY target ORDER BY next_attempt_at, id) AS k
         FROM alert_deliveries
        WHERE status IN ('pending', 'sending') AND next_attempt_at <= now() AND channel = ANY(?::text[])
     ), due AS (
       SELECT d.id FROM alert_deliveries d
         JOIN ranked r ON r.id = d.id LEFT JOIN busy b ON b.target = r.target
        WHERE r.k + coalesce(b.n, 0) <= ?
          -- again on the locked row: one another sender claimed and committed meanwhile is not due
          AND d.status IN ('pending', 'sending') AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at, d.id
        LIMIT ?
        FOR UPDATE OF d SKIP LOCKED
     )
     UPDATE alert_deliveries d
        SET status = 'sending', attempts = d.attempts + 1,
            next_attempt_at = now() + (? * interval '1 millisecond')
       FROM due WHERE d.id = due.id
     RETURNING d.id::text AS id, d.alert::text AS alert, d.channel, d.target, d.attempts`,
    [channels, channels, policy.perTarget, limit, policy.leaseMs],
  );
  return res.rows.map((r) => ({ id: r.id, alert: r.alert, channel: r.channel, target: r.target, attempt: r.attempts }));
}

export async function markDelivered(db: Db, d: ClaimedDelivery): Promise<void> {
  await db.raw(
    `UPDATE alert_deliveries SET status = 'delivered', delivered_at = now(), last_error = NULL
      WHERE id = ? AND status <> 'delivered'`,
    [d.id],
  );
}

/** Records a failed attempt; returns whether the delivery will be retried. */
export async function markFailed(db: Db, d: ClaimedDelivery, error: string, policy: OutboxPolicy): Promise<boolean> {
  const retry = d.attempt < policy.maxAttempts;
  await db.raw(
    `UPDATE alert_deliveries
        SET status = ?, last_error = ?, next_attempt_at = now() + (? * interval '1 millisecond')
      WHERE id = ? AND status = 'sending' AND attempts = ?`,
    [retry ? 'pending' : 'failed', error.slice(0, 2000), retry ? retryDelayMs(d.attempt, policy) : 0, d.id, d.attempt],
  );
  return retry;
}

/** What each claimed delivery says: the alert with its rule, device and event, as sent on the wire. */
export async function deliveryPayloads(
  db: Db,
  deliveries: readonly ClaimedDelivery[],
): Promise<Map<string, DeliveryContext>> {
  const out = new Map<string, DeliveryContext>();
  if (deliveries.length === 0) return out;
  const res = await db.raw<{ rows: Array<Record<string, unknown>> }>(
    `SELECT a.id::text AS alert, a.event_type, a.event_key, a.event_time, a.attributes, a.message, a.stale, a.created_at,
            ST_X(a.location) AS lon, ST_Y(a.location) AS lat,
            r.id AS rule_id, r.name AS rule_name, r.type AS rule_type, r.webhook_secret,
            v.id AS device_id, v.imei, v.name AS device_name
       FROM alerts a JOIN alert_rules r ON r.id = a.rule JOIN devices v ON v.id = a.device
      WHERE a.id = ANY(?::bigint[])`,
    [[...new Set(deliveries.map((d) => d.alert))]],
  );
  const byAlert = new Map(res.rows.map((r) => [String(r.alert), r]));
  const iso = (v: unknown) => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());
  for (const d of deliveries) {
    const r = byAlert.get(d.alert);
    if (!r) continue;
    const attributes = (typeof r.attributes === 'string' ? JSON.parse(r.attributes) : r.attributes) as Record<
      string,
      unknown
    > | null;
    out.set(d.id, {
      secret: (r.webhook_secret as string | null) ?? null,
      payload: {
        delivery: d.id,
        alert: d.alert,
        rule: { id: Number(r.rule_id), name: String(r.rule_name), type: String(r.rule_type) },
        device: { id: Number(r.device_id), imei: String(r.imei), name: (r.device_name as string | null) ?? null },
        event: { type: String(r.event_type), key: String(r.event_key), time: iso(r.event_time), attributes },
        position:
          r.lon === null || r.lat === null ? null : { type: 'Point', coordinates: [Number(r.lon), Number(r.lat)] },
        time: iso(r.created_at),
        message: String(r.message ?? ''),
        stale: r.stale === true,
      },
    });
  }
  return out;
}
