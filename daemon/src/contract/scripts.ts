/**
 * Named Lua scripts for the multi-key steps of the contract. Each runs atomically in Redis, so a
 * reconnect race between two instances can never leave the registry naming a dead socket.
 *
 * Register them on an ioredis client with `defineContractScripts(redis)`; they then appear as
 * methods (`redis.fleetRegister(...)`). Scripts that build key names from ARGV (heartbeat and
 * outbound keys depend on the registry value) assume a single Redis, not Redis Cluster.
 */
import type { Redis } from 'ioredis';

export interface ContractScript {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

/**
 * fleetRegister(registry, events; imei, value, instance, at, remote, transport) → the previous
 * registry value ('' if none). Point the registry at this instance and record a `connected`
 * event, in one step; the previous value says whether a live session elsewhere was taken over.
 */
export const REGISTER: ContractScript = {
  name: 'fleetRegister',
  numberOfKeys: 2,
  lua: `
local previous = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000000', '*',
  'type', 'connected', 'imei', ARGV[1], 'instance', ARGV[3], 'at', ARGV[4],
  'reason', 'handshake', 'remote', ARGV[5], 'transport', ARGV[6])
return previous or ''
`,
};

/**
 * fleetDeregister(registry, events; imei, instance, at, reason, remote, transport) → 1 if the
 * registry entry was removed, 0 if it names another instance (the device reconnected elsewhere).
 * The `disconnected` event is recorded either way: this instance's socket did close.
 */
export const DEREGISTER: ContractScript = {
  name: 'fleetDeregister',
  numberOfKeys: 2,
  lua: `
local removed = 0
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.sub(current, 1, string.len(ARGV[2]) + 1) == ARGV[2] .. '|' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  removed = 1
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', '1000000', '*',
  'type', 'disconnected', 'imei', ARGV[1], 'instance', ARGV[2], 'at', ARGV[3],
  'reason', ARGV[4], 'remote', ARGV[5], 'transport', ARGV[6])
return removed
`,
};

/**
 * fleetReapInstance(registry; instance) → number of entries removed. Clears every registry entry
 * that names the instance (used at start-up for entries a previous run with the same id left).
 */
export const REAP_INSTANCE: ContractScript = {
  name: 'fleetReapInstance',
  numberOfKeys: 1,
  lua: `
local prefix = ARGV[1] .. '|'
local n = 0
local cursor = '0'
repeat
  local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', 1000)
  cursor = page[1]
  local kv = page[2]
  for i = 1, #kv, 2 do
    if string.sub(kv[i + 1], 1, string.len(prefix)) == prefix then
      redis.call('HDEL', KEYS[1], kv[i])
      n = n + 1
    end
  end
until cursor == '0'
return n
`,
};

/**
 * fleetDispatchCommand(registry; heartbeatKeyPrefix, outboundKeyPrefix, imei, maxlen, ...fields)
 *   → [instance, entryId] when queued, nil when the device is not held by a live instance.
 * Reads the instance holding the IMEI, checks its heartbeat and XADDs the command (fields as made
 * by `encodeOutboundCommand`) to that instance's outbound stream, in one step: a device moving
 * between instances can never get a command queued on the one it just left.
 */
export const DISPATCH_COMMAND: ContractScript = {
  name: 'fleetDispatchCommand',
  numberOfKeys: 1,
  lua: `
local value = redis.call('HGET', KEYS[1], ARGV[3])
if not value then return nil end
local instance = string.match(value, '^(.*)|[^|]*$') or value
if redis.call('EXISTS', ARGV[1] .. instance) == 0 then return nil end
local id = redis.call('XADD', ARGV[2] .. instance, 'MAXLEN', '~', ARGV[4], '*', unpack(ARGV, 5))
return {instance, id}
`,
};

export const CONTRACT_SCRIPTS: readonly ContractScript[] = [REGISTER, DEREGISTER, REAP_INSTANCE, DISPATCH_COMMAND];

export interface ContractCommands {
  fleetRegister(
    registry: string,
    events: string,
    imei: string,
    value: string,
    instance: string,
    at: string,
    remote: string,
    transport: string,
  ): Promise<string>;
  fleetDeregister(
    registry: string,
    events: string,
    imei: string,
    instance: string,
    at: string,
    reason: string,
    remote: string,
    transport: string,
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
