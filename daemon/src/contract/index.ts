/**
 * The contract between the daemon and the Directus extension: Redis key names, groups, messages,
 * scripts, limits, attribute keys, and the alerting names and wire formats.
 */
export * from './alerts.js';
export * from './attributes.js';
export * from './events.js';
export * from './keys.js';
export * from './limits.js';
export * from './messages.js';
export * from './redis.js';
export * from './scripts.js';
export * from './stream-reader.js';
