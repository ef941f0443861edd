/**
 * Redis Streams plumbing shared by the processor's consumers: group creation, reading raw entries
 * as Buffers (frames are binary), consumer-group introspection and safe trimming.
 */
import type { Redis } from 'ioredis';

export interface RawEntry {
  id: string;
  /** null when the entry was deleted/trimmed while still pending. */
  fields: Buffer[] | null;
  /** Times delivered (1 for a first read with `>`). */
  deliveries: number;
}

/** Creates the group at the start of the stream (so entries written before the first processor ran are processed too). */
export async function ensureGroup(redis: Redis, stream: string, group: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
  } catch (err) {
    if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
  }
}

export function isNoGroupError(err: unknown): boolean {
  return String((err as Error | undefined)?.message ?? '').startsWith('NOGROUP');
}

type EntryReply = [Buffer, Buffer[] | null];

/** Parses the entries of one stream from an XREADGROUP reply (Buffer mode). */
export function parseReadReply(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const entries = (reply[0] as [Buffer, EntryReply[]])[1] ?? [];
  return entries.map(([id, fields]) => ({ id: id.toString(), fields, deliveries: 1 }));
}

export async function readGroup(
  redis: Redis,
  stream: string,
  group: string,
  consumer: string,
  count: number,
  /** '>' for new entries, or an id: own pending entries after it ('0-0' for all). */
  from: string,
  blockMs: number,
): Promise<RawEntry[]> {
  const args: (string | number)[] = ['GROUP', group, consumer, 'COUNT', count];
  if (from === '>' && blockMs > 0) args.push('BLOCK', blockMs);
  args.push('STREAMS', stream, from);
  return parseReadReply(await redis.callBuffer('XREADGROUP', ...args));
}

/** XAUTOCLAIM one page: entries idle longer than `minIdleMs` become this consumer's. */
export async function autoClaim(
  redis: Redis,
  stream: string,
  group: string,
  consumer: string,
  minIdleMs: number,
  cursor: string,
  count: number,
): Promise<{ cursor: string; entries: RawEntry[]; deleted: string[] }> {
  const reply = (await redis.callBuffer('XAUTOCLAIM', stream, group, consumer, minIdleMs, cursor, 'COUNT', count)) as [
    Buffer,
    EntryReply[],
    Buffer[]?,
  ];
  return {
    cursor: reply[0].toString(),
    entries: (reply[1] ?? []).map(([id, fields]) => ({ id: id.toString(), fields, deliveries: 1 })),
    deleted: (reply[2] ?? []).map((b) => b.toString()),
  };
}

/** Fills in `deliveries` from the group's pending list (for entries read from history or claimed). */
export async function fillDeliveryCounts(
  redis: Redis,
  stream: string,
  group: string,
  consumer: string,
  entries: RawEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  const ids = entries.map((e) => e.id).sort(compareIds);
  const reply = (await redis.xpending(stream, group, ids[0]!, ids[ids.length - 1]!, entries.length * 2, consumer)) as [
    string,
    string,
    number,
    number,
  ][];
  const counts = new Map(reply.map(([id, , , n]) => [id, Number(n)]));
  for (const e of entries) e.deliveries = counts.get(e.id) ?? e.deliveries;
}

export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm);
  if (d !== 0n) return d < 0n ? -1 : 1;
  const e = BigInt(as) - BigInt(bs);
  return e === 0n ? 0 : e < 0n ? -1 : 1;
}

export interface GroupInfo {
  name: string;
  consumers: number;
  pending: number;
  lastDeliveredId: string;
  /** null when Redis cannot compute it (entries deleted past the group's position). */
  lag: number | null;
}

function pairs(flat: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1];
  return out;
}

export async function groupsInfo(redis: Redis, stream: string): Promise<GroupInfo[]> {
  let reply: unknown[];
  try {
    reply = (await redis.xinfo('GROUPS', stream)) as unknown[];
  } catch (err) {
    if (String((err as Error).message).includes('no such key')) return [];
    throw err;
  }
  return reply.map((g) => {
    const r = pairs(g as unknown[]);
    return {
      name: String(r.name),
      consumers: Number(r.consumers),
      pending: Number(r.pending),
      lastDeliveredId: String(r['last-delivered-id']),
      lag: r.lag === null || r.lag === undefined ? null : Number(r.lag),
    };
  });
}

/**
 * The smallest id some group still needs: its oldest pending entry, or (with nothing pending) its
 * last delivered id. Everything older has been acknowledged by every group. null: no group (then
 * nothing may be trimmed: a reader may not have created its group yet).
 */
export async function oldestNeededId(redis: Redis, stream: string): Promise<string | null> {
  const groups = await groupsInfo(redis, stream);
  if (groups.length === 0) return null;
  let min: string | null = null;
  for (const g of groups) {
    let needed = g.lastDeliveredId;
    if (g.pending > 0) {
      const summary = (await redis.xpending(stream, g.name)) as [number, string | null, string | null, unknown];
      if (summary[1]) needed = summary[1];
    }
    if (min === null || compareIds(needed, min) < 0) min = needed;
  }
  return min;
}

/**
 * Trims entries every group has acknowledged and that are older than `retainMs` (kept a while so a
 * fixed parser can replay recent frames). Safe without a script: a group's oldest needed id only
 * ever grows, so a value read a moment ago is still a lower bound. Also keeps Redis' lag
 * computable, since nothing after a group's last delivered id is ever removed.
 * Returns the number of entries removed.
 */
export async function trimAcknowledged(
  redis: Redis,
  stream: string,
  retainMs: number,
  now = Date.now(),
  approximate = true,
): Promise<number> {
  const needed = await oldestNeededId(redis, stream);
  if (needed === null) return 0;
  const byAge = `${Math.max(0, now - retainMs)}-0`;
  const minId = compareIds(needed, byAge) < 0 ? needed : byAge;
  if (minId === '0-0') return 0;
  return Number(
    approximate ? await redis.xtrim(stream, 'MINID', '~', minId) : await redis.xtrim(stream, 'MINID', minId),
  );
}

/**
 * Removes consumers that hold nothing and have been idle longer than `idleMs` (every restart under
 * a pid-based name leaves one behind). A consumer with pending entries is never removed: that
 * would drop its entries from the group's pending list.
 */
export async function removeIdleConsumers(
  redis: Redis,
  stream: string,
  group: string,
  idleMs: number,
): Promise<string[]> {
  let reply: unknown[];
  try {
    reply = (await redis.xinfo('CONSUMERS', stream, group)) as unknown[];
  } catch (err) {
    if (/no such key|NOGROUP/i.test(String((err as Error).message))) return [];
    throw err;
  }
  const removed: string[] = [];
  for (const c of reply) {
    const r = pairs(c as unknown[]);
    if (Number(r.pending) === 0 && Number(r.idle) > idleMs) {
      await redis.xgroup('DELCONSUMER', stream, group, String(r.name));
      removed.push(String(r.name));
    }
  }
  return removed;
}
