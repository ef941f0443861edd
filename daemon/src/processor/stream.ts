/**
 * Redis Streams upkeep for the processor: consumer-group introspection, safe trimming and idle
 * consumer removal.
 */
import type { Redis } from 'ioredis';
import { compareIds } from '../contract/stream-reader.js';

// Group creation, reading and claiming live with the contract's StreamReader; re-exported for the
// processor's telemetry loop, which reads through them directly.
export {
  autoClaim,
  byStream,
  compareIds,
  ensureGroup,
  fillDeliveryCounts,
  isNoGroupError,
  parseReadReply,
  type RawEntry,
  readGroup,
} from '../contract/stream-reader.js';

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
