/**
 * Named Lua scripts for the multi-key steps of the contract. Each runs atomically in Redis, so a
 * reconnect race between two instances can never leave the registry naming a dead socket.
 *
 * The scripts live as `.lua` files in ./lua (inlined into ./lua/scripts.generated.ts, so bundles
 * need no files at run time). Stream entries they append are never spelled out in Lua: the caller
 * passes the fields the contract's message definition encoded.
 *
 * Register them on an ioredis client with `defineContractScripts(redis)`; they then appear as
 * methods (`redis.fleetRegister(...)`).
 *
 * Redis Cluster: a script runs on the node of its first key and may touch only keys of that slot.
 * Every key these scripts touch is a connection-plane key (registry, events, heartbeats, outbound
 * streams), and in a cluster all of them carry the same `{fleet}` hash tag (see keys.ts), so the
 * keys the dispatch script builds from ARGV (the heartbeat and outbound stream of the instance the
 * registry names) are in the registry's slot too.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from './keys.js';
import { LUA_SOURCES } from './lua/scripts.generated.js';
import { type ConnectionEventInput, encodeConnectionEvent } from './messages.js';

export interface ContractScript {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

/** `connections:events` keeps about this many entries. */
export const CONNECTION_EVENTS_MAXLEN = 1_000_000;

/** fleetRegister(registry, events; imei, value, maxlen, ...event) → the previous registry value or ''. */
export const REGISTER: ContractScript = { name: 'fleetRegister', numberOfKeys: 2, lua: LUA_SOURCES.register };
/** fleetDeregister(registry, events; imei, instance, maxlen, ...event) → 1 if removed, 0 if it names another instance. */
export const DEREGISTER: ContractScript = { name: 'fleetDeregister', numberOfKeys: 2, lua: LUA_SOURCES.deregister };
/** fleetReapInstance(registry; instance) → number of entries removed. */
export const REAP_INSTANCE: ContractScript = {
  name: 'fleetReapInstance',
  numberOfKeys: 1,
  lua: LUA_SOURCES['reap-instance'],
};
/** fleetDispatchCommand(registry; heartbeatPrefix, outboundPrefix, imei, maxlen, ...command) → [instance, id] or null. */
export const DISPATCH_COMMAND: ContractScript = {
  name: 'fleetDispatchCommand',
  numberOfKeys: 1,
  lua: LUA_SOURCES['dispatch-command'],
};

export const CONTRACT_SCRIPTS: readonly ContractScript[] = [REGISTER, DEREGISTER, REAP_INSTANCE, DISPATCH_COMMAND];

export interface ContractCommands {
  fleetRegister(
    registry: string,
    events: string,
    imei: string,
    value: string,
    maxlen: string,
    ...event: string[]
  ): Promise<string>;
  fleetDeregister(
    registry: string,
    events: string,
    imei: string,
    instance: string,
    maxlen: string,
    ...event: string[]
  ): Promise<number>;
  fleetReapInstance(registry: string, instance: string): Promise<number>;
  fleetDispatchCommand(
    registry: string,
    heartbeatKeyPrefix: string,
    outboundKeyPrefix: string,
    imei: string,
    maxlen: string,
    ...fields: string[]
  ): Promise<[string, string] | null>;
}

/** Registers the contract scripts on a client (idempotent) and returns it typed with them. */
export function defineContractScripts<R extends Redis>(
  redis: R,
  scripts: readonly ContractScript[] = CONTRACT_SCRIPTS,
): R & ContractCommands {
  const target = redis as R & Record<string, unknown>;
  for (const s of scripts) {
    if (typeof target[s.name] !== 'function') {
      redis.defineCommand(s.name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
    }
  }
  return redis as R & ContractCommands;
}

type ConnectionChange = Omit<ConnectionEventInput, 'type'>;
type ConnectionScriptArgs = [string, string, string, string, string, ...string[]];

/** KEYS and ARGV shared by the register and deregister scripts: imei, `arg`, maxlen, …event. */
function connectionArgs(keys: RedisKeys, arg: string, event: ConnectionEventInput): ConnectionScriptArgs {
  const { connectionsRegistry, connectionsEvents } = keys;
  const fields = encodeConnectionEvent(event);
  return [connectionsRegistry, connectionsEvents, event.imei, arg, String(CONNECTION_EVENTS_MAXLEN), ...fields];
}

/**
 * Points the registry entry for `event.imei` at `value` and appends the `connected` event, in one
 * step. Returns the previous registry value ('' if none).
 */
export function registerConnection(
  redis: ContractCommands,
  keys: RedisKeys,
  value: string,
  event: ConnectionChange,
): Promise<string> {
  return redis.fleetRegister(...connectionArgs(keys, value, { ...event, type: 'connected' }));
}

/**
 * Removes the registry entry for `event.imei` only if it names `event.instance`, and appends the
 * `disconnected` event either way. Returns 1 if the entry was removed.
 */
export function deregisterConnection(
  redis: ContractCommands,
  keys: RedisKeys,
  event: ConnectionChange,
): Promise<number> {
  return redis.fleetDeregister(...connectionArgs(keys, event.instance, { ...event, type: 'disconnected' }));
}
