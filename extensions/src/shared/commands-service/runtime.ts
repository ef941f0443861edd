/**
 * Process-wide state of the extension: its Redis clients (the shared one, `commandClient`, used by
 * the commands service and the fleet endpoint's health route, and one per blocking stream consumer)
 * and the consumer loops. Its life is Directus's: the commands hook closes it on `server.stop`.
 *
 * Kept on globalThis because Directus re-imports the bundle on an extension reload without any
 * dispose hook; the new registration finds the old runtime here and closes it first. Clients are
 * created on first use, so CLI commands (`schema apply`, `bootstrap`) that load the extension never
 * open a connection.
 */
import {
  type ContractCommands,
  createRedisClient,
  defineContractScripts,
  type RedisKeys,
  redisKeys,
} from '@fleet/daemon/contract';
import type { Redis } from 'ioredis';
import type { CommandConfig } from '../commands';
import { closeDeviceLocks } from './locks';

export type FleetRedis = Redis & ContractCommands;

export interface Runtime {
  config: CommandConfig;
  keys: RedisKeys;
  /** True once `server.start` fired in this process (survives reloads: consumers restart). */
  serverStarted: boolean;
  closed: boolean;
  clients: Redis[];
  stops: Array<() => Promise<void>>;
  commandClient: FleetRedis | null;
}

const KEY = Symbol.for('fleet.commands.runtime');
type Holder = { [KEY]?: Runtime };

export function currentRuntime(): Runtime | undefined {
  return (globalThis as Holder)[KEY];
}

/** Replaces any runtime left by a previous load of the bundle. */
export async function installRuntime(config: CommandConfig): Promise<Runtime> {
  const previous = currentRuntime();
  const runtime: Runtime = {
    config,
    keys: redisKeys(config.prefix, config.keyLayout),
    serverStarted: previous?.serverStarted ?? false,
    closed: false,
    clients: [],
    stops: [],
    commandClient: null,
  };
  (globalThis as Holder)[KEY] = runtime;
  if (previous) await closeRuntime(previous);
  return runtime;
}

export function newClient(runtime: Runtime, name: string, commandTimeout?: number): Redis {
  const target = runtime.config.redis;
  if (!target) throw new Error('Redis is not configured (REDIS); commands stay pending');
  if (runtime.closed) throw new Error('commands runtime is closed');
  const client = createRedisClient(target, {
    // Named, so CLIENT LIST shows which connections are the extension's.
    connectionName: `fleet-extension-${name}`,
    commandTimeout,
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    // Connection errors are retried by ioredis; an unhandled 'error' event would crash Directus.
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  client.on('error', () => {});
  runtime.clients.push(client);
  return client;
}

/** The shared non-blocking client with the contract scripts, created on first use. */
export function commandClient(runtime: Runtime): FleetRedis {
  if (!runtime.commandClient) {
    runtime.commandClient = defineContractScripts(newClient(runtime, 'cmd', 5000));
  }
  return runtime.commandClient;
}

/**
 * Stops the consumers and closes every client. Directus neither awaits its `server.stop` actions nor
 * waits for them before the process exits, so the closing is started before the first await: the
 * consumers' blocked connections are dropped and QUIT is written on the others at once.
 */
export async function closeRuntime(runtime: Runtime): Promise<void> {
  if (runtime.closed) return;
  runtime.closed = true;
  const stopped = runtime.stops.map((stop) => stop());
  const quit = runtime.clients.map((c) => (c.status === 'end' ? null : c.quit().catch(() => c.disconnect())));
  runtime.clients = [];
  runtime.commandClient = null;
  await Promise.allSettled([...stopped, ...quit, closeDeviceLocks()]);
}
