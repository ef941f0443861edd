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
  /** null: the caller passes the number of keys as the first argument. */
  readonly numberOfKeys: number | null;
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

/**
 * fleetAppendEntries(numkeys, ...streams; batch) → per entry its id or its error; arguments from
 * `appendEntriesArgs`. Sent as EVAL with its source by the stream writer (see there why), so not
 * among the scripts defined on clients.
 */
export const APPEND_ENTRIES: ContractScript = {
  name: 'fleetAppendEntries',
  numberOfKeys: null,
  lua: LUA_SOURCES['append-entries'],
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
      redis.defineCommand(s.name, { numberOfKeys: s.numberOfKeys ?? undefined, lua: s.lua });
    }
  }
  return redis as R & ContractCommands;
}

/** One stream entry to append: the stream's key and the fields a message definition encoded. */
export interface StreamEntry {
  readonly key: string;
  readonly fields: readonly (string | Buffer)[];
}

/**
 * The arguments of one `fleetAppendEntries` call appending `entries` in order: the number of
 * streams, the streams, and the batch as one MessagePack array of `[streamIndex, ...fields]`
 * arrays (strings as UTF-8, buffers as they are; MessagePack `str` carries any bytes, and Lua
 * strings are bytes). In a Redis Cluster every stream must be in one slot (the caller groups them).
 */
export function appendEntriesArgs(entries: readonly StreamEntry[]): [numkeys: string, ...rest: (string | Buffer)[]] {
  const streams: string[] = [];
  const indexes = new Uint16Array(entries.length);
  let size = arrayHeaderSize(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as StreamEntry;
    let k = streams.indexOf(e.key);
    if (k < 0) k = streams.push(e.key) - 1;
    indexes[i] = k + 1;
    size += arrayHeaderSize(e.fields.length + 1) + uintSize(k + 1);
    for (const f of e.fields) {
      const n = typeof f === 'string' ? utf8Length(f) : f.length;
      size += strHeaderSize(n) + n;
    }
  }
  const out = Buffer.allocUnsafe(size);
  let at = writeArrayHeader(out, 0, entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as StreamEntry;
    at = writeArrayHeader(out, at, e.fields.length + 1);
    at = writeUint(out, at, indexes[i] as number);
    for (const f of e.fields) {
      if (typeof f === 'string') {
        const n = utf8Length(f);
        at = writeStrHeader(out, at, n);
        if (n === f.length) {
          // ASCII: copied here, as calls into the buffer binding cost more than these few bytes.
          for (let j = 0; j < n; j++) out[at + j] = f.charCodeAt(j);
          at += n;
        } else at += out.write(f, at, n, 'utf8');
      } else {
        at = writeStrHeader(out, at, f.length);
        at += f.copy(out, at);
      }
    }
  }
  return [String(streams.length), ...streams, out];
}

/**
 * UTF-8 length of a field: the fields are short ASCII strings (names, numbers, the IMEI), counted
 * here; anything else by Buffer.byteLength. Equal to `s.length` exactly when `s` is ASCII.
 */
function utf8Length(s: string): number {
  if (s.length > 64) return Buffer.byteLength(s);
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s);
  return s.length;
}

// The few MessagePack forms the batch uses: arrays, positive integers below 2^16, and str.
const arrayHeaderSize = (n: number) => (n < 16 ? 1 : n < 0x10000 ? 3 : 5);
const uintSize = (n: number) => (n < 128 ? 1 : 3);
const strHeaderSize = (n: number) => (n < 32 ? 1 : n < 0x10000 ? 3 : 5);

function writeArrayHeader(b: Buffer, at: number, n: number): number {
  if (n < 16) return b.writeUInt8(0x90 | n, at);
  if (n < 0x10000) return b.writeUInt16BE(n, b.writeUInt8(0xdc, at));
  return b.writeUInt32BE(n, b.writeUInt8(0xdd, at));
}

function writeUint(b: Buffer, at: number, n: number): number {
  return n < 128 ? b.writeUInt8(n, at) : b.writeUInt16BE(n, b.writeUInt8(0xcd, at));
}

function writeStrHeader(b: Buffer, at: number, n: number): number {
  if (n < 32) return b.writeUInt8(0xa0 | n, at);
  if (n < 0x10000) return b.writeUInt16BE(n, b.writeUInt8(0xda, at));
  return b.writeUInt32BE(n, b.writeUInt8(0xdb, at));
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
