/**
 * What the Directus extension uses of alerting: the outbox rules (claim, mark, payloads, policy).
 * The shapes they exchange (ClaimedDelivery, DeliveryContext, AlertPayload) are in the contract.
 */
export * from './outbox.js';
