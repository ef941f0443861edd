/**
 * The commands service: the server side of commands (storage and transitions, dispatch to the
 * instance holding a device, response and connection-event handling, the sweeper, the create and
 * update rules applied to Directus requests, and the Redis runtime they share). The commands hook
 * and the endpoint both use it, so neither reaches into the other; the pure rules live in
 * ../commands, which panels import too.
 */
export { type ConsumerOptions, startConsumer } from './consumer';
export { dispatchDeviceSafely } from './dispatcher';
export * from './errors';
export { handleConnectionEvent, handleResponses } from './handlers';
export { closeRuntime, commandClient, currentRuntime, installRuntime, type Runtime } from './runtime';
export { senderOf } from './sender';
export { COMMANDS, type Ctx, DEVICES, readCommand, transition } from './store';
export { sweep } from './sweeper';
export { filterCreate, filterUpdate } from './validate';
