/** What the Directus extension uses of alerting: the outbox rules (claim, mark, payloads, policy). */
export {
  type ClaimedDelivery,
  claimDeliveries,
  type DeliveryContext,
  deliveryPayloads,
  markDelivered,
  markFailed,
  type OutboxPolicy,
  OutboxSettings,
  outboxPolicy,
} from './outbox.js';
