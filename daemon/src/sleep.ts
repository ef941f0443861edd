/** Waits `ms`, or less if `signal` aborts: resolves either way so shutdown never turns into a rejection. */
export { abortableWait as sleep } from './contract/stream-reader.js';
