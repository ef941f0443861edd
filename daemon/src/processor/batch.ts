/**
 * The steps of handling one batch of `telemetry:avl` that decide what becomes of each entry, as
 * plain functions with typed results (the consumer wires them to Redis and PostgreSQL):
 *
 * - `triage`: which entries are gone, which are dead on arrival (invalid, undecodable) and which
 *   go on to be written;
 * - `isolateRejections`: which entries the database refuses as data, found by halving the batch;
 * - `acknowledge`: the XACK of committed entries, with the failure counts they leave behind.
 */
import type { Redis } from 'ioredis';
import { GROUPS } from '../contract/index.js';
import { decodeEntry, isFailure } from './decode.js';
import type { DecodedEntry } from './rows.js';
import { isNoGroupError, type RawEntry } from './stream.js';

/** Why an entry went to `telemetry:dead` (the `cause` of its dead letter and metric label). */
export type DeadCause = 'invalid' | 'undecodable' | 'unknown_device' | 'rejected' | 'failures';

export interface DeadEntry {
  raw: RawEntry;
  error: string;
  cause: DeadCause;
}

export interface Triage {
  /** Entries deleted from the stream while pending: nothing left to store, only to acknowledge. */
  gone: string[];
  /** Entries that can never be stored. */
  dead: DeadEntry[];
  /** Entries to write, with the raw entry each came from. */
  decoded: { raw: RawEntry; entry: DecodedEntry }[];
}

export function triage(batch: readonly RawEntry[]): Triage {
  const out: Triage = { gone: [], dead: [], decoded: [] };
  for (const raw of batch) {
    if (raw.fields === null) {
      out.gone.push(raw.id);
      continue;
    }
    const d = decodeEntry(raw.id, raw.fields);
    if (isFailure(d)) out.dead.push({ raw, error: d.error, cause: d.cause });
    else out.decoded.push({ raw, entry: d });
  }
  return out;
}

/** One attempt at writing items: committed, or refused because of the items themselves. */
export type WriteAttempt =
  | { kind: 'committed' }
  | { kind: 'rejected'; cause: 'rejected' | 'unknown_device'; error: string };

/**
 * Writes `items` through `attempt`; when the database refuses them as data, halves the batch
 * until each refusal is pinned to one item, so the rest are committed. Returns the refused items.
 * (`attempt` itself waits out outages: a refusal is never an outage.)
 */
export async function isolateRejections<T>(
  items: readonly T[],
  attempt: (items: readonly T[]) => Promise<WriteAttempt>,
): Promise<({ item: T } & Omit<DeadEntry, 'raw'>)[]> {
  if (items.length === 0) return [];
  const res = await attempt(items);
  if (res.kind === 'committed') return [];
  if (items.length === 1) return [{ item: items[0]!, cause: res.cause, error: res.error }];
  const half = Math.ceil(items.length / 2);
  return [
    ...(await isolateRejections(items.slice(0, half), attempt)),
    ...(await isolateRejections(items.slice(half), attempt)),
  ];
}

/**
 * `acknowledged`: the XACK went through (`failuresLeft`: whether `failuresKey` still holds
 * counts). `group_missing`: the group was lost with Redis' data, so there is nothing to
 * acknowledge; the rows are committed and a replay of the entries adds none.
 */
export type AckResult = { kind: 'acknowledged'; failuresLeft: boolean } | { kind: 'group_missing' };

/**
 * XACKs `ids`; when failure counts may exist, drops theirs in the same MULTI (HDEL) and reports
 * whether any remain, so the caller can skip that work while there are none.
 */
export async function acknowledge(
  redis: Redis,
  stream: string,
  failuresKey: string,
  ids: readonly string[],
  failuresMayExist: boolean,
): Promise<AckResult> {
  try {
    if (!failuresMayExist) {
      await redis.xack(stream, GROUPS.processors, ...ids);
      return { kind: 'acknowledged', failuresLeft: false };
    }
    const res = await redis
      .multi()
      .xack(stream, GROUPS.processors, ...ids)
      .hdel(failuresKey, ...ids)
      .hlen(failuresKey)
      .exec();
    const failed = res?.find(([e]) => e);
    if (!res || failed) throw failed?.[0] ?? new Error('MULTI aborted');
    return { kind: 'acknowledged', failuresLeft: Number(res[2]?.[1]) > 0 };
  } catch (err) {
    if (isNoGroupError(err)) return { kind: 'group_missing' };
    throw err;
  }
}
