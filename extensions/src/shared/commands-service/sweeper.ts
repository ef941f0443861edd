/**
 * The sweeper (a Directus schedule, run once per tick across instances when
 * SYNCHRONIZATION_STORE=redis) repairs whatever the event-driven paths missed:
 *
 * 1. expires pending/queued commands past `expires_at`;
 * 2. re-dispatches queued/sent commands whose instance's heartbeat is gone (attempts + 1, or
 *    failed once attempts are spent);
 * 3. re-dispatches queued commands whose outbound entry vanished (stream trimmed, Redis lost);
 * 4. dispatches pending commands of devices that are online (a missed create action or connect event).
 */
import { decodeOutboundCommand, decodeRegistryValue } from '@fleet/daemon/contract';
import { expire, redispatch, toMs } from '../commands';
import { dispatchDeviceSafely } from './dispatcher';
import { commandClient, type Runtime } from './runtime';
import { COMMANDS, type Ctx, DEVICES, transition } from './store';

export interface SweepReport {
  expired: number;
  orphaned: number;
  lost: number;
  dispatchedDevices: number;
}

const BATCH = 1000;

export async function sweep(ctx: Ctx, runtime: Runtime, now = Date.now()): Promise<SweepReport> {
  const report: SweepReport = { expired: 0, orphaned: 0, lost: 0, dispatchedDevices: 0 };
  const db = ctx.database;
  const { config, keys } = runtime;
  const toDispatch = new Set<string | number>();

  // 1. expiry
  const expiring = await db(COMMANDS)
    .whereIn('status', ['pending', 'queued'])
    .andWhere('expires_at', '<=', new Date(now))
    .limit(BATCH)
    .select('id');
  for (const { id } of expiring) {
    const { decision } = await transition(ctx, id, (row) => expire(row, now));
    if (decision && 'patch' in decision) report.expired++;
  }

  if (!config.redis) return report;
  const redis = commandClient(runtime);

  // 2 + 3. commands held by an instance
  const held = await db(COMMANDS)
    .whereIn('status', ['queued', 'sent'])
    .whereNotNull('instance_id')
    .orderBy('id')
    .limit(BATCH * 10)
    .select('id', 'device', 'status', 'attempts', 'instance_id', 'queued_at');
  const instances = [...new Set(held.map((r) => String(r.instance_id)))];
  const alive = new Map<string, boolean>();
  if (instances.length > 0) {
    const exists = await Promise.all(instances.map((i) => redis.exists(keys.heartbeat(i))));
    instances.forEach((i, n) => {
      alive.set(i, exists[n] === 1);
    });
  }
  // Outbound entry ids start with the Redis time of the XADD, so only a window around the queue
  // times needs reading, not the whole (long) stream. The margin absorbs clock skew between hosts.
  const SKEW_MS = 30_000;
  const windows = new Map<string, { from: number; to: number }>();
  for (const r of held) {
    const queuedAt = toMs(r.queued_at);
    if (r.status !== 'queued' || queuedAt === null || now - queuedAt < config.lostAfterMs) continue;
    const w = windows.get(String(r.instance_id));
    windows.set(String(r.instance_id), {
      from: Math.min(w?.from ?? queuedAt, queuedAt),
      to: Math.max(w?.to ?? queuedAt, queuedAt),
    });
  }
  const outboundCache = new Map<string, Set<string>>();
  const outboundEntries = async (instance: string): Promise<Set<string>> => {
    let set = outboundCache.get(instance);
    if (!set) {
      set = new Set();
      const w = windows.get(instance) ?? { from: 0, to: now };
      const entries = (await redis.xrange(
        keys.commandsOutbound(instance),
        String(Math.max(0, w.from - SKEW_MS)),
        String(w.to + SKEW_MS),
      )) as Array<[string, string[]]>;
      for (const [, fields] of entries) {
        try {
          const c = decodeOutboundCommand(fields);
          set.add(`${c.commandId}#${c.attempt}`);
        } catch {
          // Not ours to judge; ingestion reports undecodable entries itself.
        }
      }
      outboundCache.set(instance, set);
    }
    return set;
  };

  for (const r of held) {
    const instance = String(r.instance_id);
    let found: { kind: 'orphaned' | 'lost'; why: string } | null = null;
    if (!alive.get(instance)) {
      found = { kind: 'orphaned', why: `instance ${instance} stopped (heartbeat expired)` };
    } else if (r.status === 'queued') {
      const queuedAt = toMs(r.queued_at);
      if (queuedAt !== null && now - queuedAt >= config.lostAfterMs) {
        const present = await outboundEntries(instance);
        if (!present.has(`${r.id}#${Number(r.attempts)}`)) {
          found = { kind: 'lost', why: `outbound entry on ${instance} was lost` };
        }
      }
    }
    if (!found) continue;
    const { kind, why } = found;
    const { row, decision } = await transition(ctx, r.id, (row) => {
      // Re-check under the lock: a response may have moved it on meanwhile.
      if ((row.status !== 'queued' && row.status !== 'sent') || row.instance_id !== instance) {
        return { ignore: 'moved on' };
      }
      return redispatch(row, why, config.maxAttempts);
    });
    if (row && decision && 'patch' in decision) {
      report[kind]++;
      if (decision.redispatch) toDispatch.add(row.device);
    }
  }

  // 4. pending commands of devices that are online now
  const pending = await db(COMMANDS)
    .join(DEVICES, `${DEVICES}.id`, `${COMMANDS}.device`)
    .where(`${COMMANDS}.status`, 'pending')
    .andWhere((q) => q.whereNull(`${COMMANDS}.expires_at`).orWhere(`${COMMANDS}.expires_at`, '>', new Date(now)))
    .distinct(`${COMMANDS}.device as device`, `${DEVICES}.imei as imei`)
    .limit(BATCH);
  if (pending.length > 0) {
    const values = await redis.hmget(keys.connectionsRegistry, ...pending.map((p) => String(p.imei)));
    pending.forEach((p, n) => {
      const v = values[n];
      if (v && alive.get(decodeRegistryValue(v).instance) !== false) toDispatch.add(p.device);
    });
  }

  for (const device of toDispatch) {
    await dispatchDeviceSafely(ctx, runtime, device);
    report.dispatchedDevices++;
  }
  return report;
}
