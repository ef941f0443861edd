/** The Redis contract between the daemon and the Directus extension: key names, groups, messages, scripts. */
export * from './keys.js';
export * from './messages.js';
export * from './scripts.js';
