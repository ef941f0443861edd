/**
 * The alerting contract between the daemon (writes alerts and their deliveries, sends webhooks)
 * and the Directus extension (sends in-app notifications and e-mail, shows and acknowledges
 * alerts): names of channels and states, the outbox's PostgreSQL notification channel, the webhook
 * wire format and its headers. Both sides import these; nothing else spells them.
 */
import { z } from 'zod';

export const ALERT_STATES = ['open', 'acknowledged', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/** `app`: a Directus in-app notification to one user; `email`: one address; `webhook`: one URL. */
export const DELIVERY_CHANNELS = ['app', 'email', 'webhook'] as const;
export type DeliveryChannel = (typeof DELIVERY_CHANNELS)[number];

/** pending → sending (leased until next_attempt_at) → delivered, or failed after the last attempt. */
export const DELIVERY_STATUSES = ['pending', 'sending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/**
 * PostgreSQL NOTIFY channel raised in the transaction that creates deliveries (payload: the
 * channels that got new rows, comma-separated). Senders LISTEN to wake up at commit instead of
 * waiting for their next poll; the poll stays as the safety net.
 */
export const DELIVERIES_NOTIFY_CHANNEL = 'fleet_alert_deliveries';

/** Webhook request headers. */
export const WEBHOOK_HEADERS = {
  /** `sha256=<hex HMAC-SHA256 of the raw body with the rule's webhook_secret>`. */
  signature: 'x-fleet-signature',
  /** The delivery id: the same on every retry of one delivery, so a receiver can drop repeats. */
  delivery: 'x-fleet-delivery',
  /** Attempt number of this request (1, 2, ...). */
  attempt: 'x-fleet-attempt',
} as const;

const Point = z.object({ type: z.literal('Point'), coordinates: z.tuple([z.number(), z.number()]) });

/** The JSON body of a webhook (and the data of an in-app notification / e-mail). */
export const AlertPayload = z.object({
  /** Delivery id (as in the header). */
  delivery: z.string(),
  alert: z.string(),
  rule: z.object({ id: z.number(), name: z.string(), type: z.string() }),
  device: z.object({ id: z.number(), imei: z.string(), name: z.string().nullable() }),
  event: z.object({
    type: z.string(),
    key: z.string(),
    time: z.string(),
    attributes: z.record(z.string(), z.unknown()).nullable(),
  }),
  position: Point.nullable(),
  /** When the alert was raised (ISO). */
  time: z.string(),
  message: z.string(),
  stale: z.boolean(),
});
export type AlertPayload = z.infer<typeof AlertPayload>;

/** A delivery a sender claimed from the outbox (`alert_deliveries`), leased to it for this attempt. */
export interface ClaimedDelivery {
  id: string;
  alert: string;
  channel: DeliveryChannel;
  target: string;
  /** This attempt's number (1 = first); also the token that proves we hold it. */
  attempt: number;
}

/** What one claimed delivery says, for every channel: the payload as sent on the wire. */
export interface DeliveryContext {
  payload: AlertPayload;
  /** The rule's webhook secret (webhook deliveries). */
  secret: string | null;
}

/** Event types the `alarm` rule type stands for (the Teltonika alarm events of the history derivation). */
export const ALARM_EVENT_TYPES = [
  'alarm',
  'crash',
  'towing',
  'jamming',
  'unplug',
  'harsh_acceleration',
  'harsh_braking',
  'harsh_cornering',
] as const;

/** Event types the `low_power` rule type stands for. */
export const LOW_POWER_EVENT_TYPES = ['power_low', 'power_lost'] as const;

/** Event types the geofence and zone-speed check derives. */
export const GEOFENCE_EVENT_TYPES = {
  enter: 'geofence_enter',
  exit: 'geofence_exit',
  overspeedStart: 'overspeed_start',
  overspeedEnd: 'overspeed_end',
} as const;

/** Event key of a zone overspeed event (`overspeed_*` without a zone has the key ''). */
export const zoneOverspeedKey = (geofence: number | string): string => `zone:${geofence}`;
