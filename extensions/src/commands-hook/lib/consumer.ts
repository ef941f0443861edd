/**
 * A consumer-group reader for one stream: reads new entries, hands each to `handle`, acknowledges
 * it once handled. An entry whose handler throws (database down, say) stays pending and is
 * claimed again after `claimIdleMs`, by this or another Directus instance; an entry that cannot
 * even be decoded is logged and acknowledged, since no retry can fix it.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { newClient, type Runtime } from './runtime';

export type StreamFields = string[];

export class PoisonEntryError extends Error {
  override name = 'PoisonEntryError';
}

export interface ConsumerOptions {
  stream: string;
  group: string;
  /** Where a new group starts: '0' replays the stream's history, '$' only new entries. */
  startId: '0' | '$';
  handle?: (id: string, fields: StreamFields) => Promise<void>;
  logger: { warn(obj: unknown, msg: string): void; error(obj: unknown, msg: string): void };
  blockMs?: number;
  count?: number;
  /**
   * Entries with the same key are handled one after another, in stream order; different keys run
   * side by side (up to `parallel`). Without it everything is sequential.
   */
  keyOf?: (fields: StreamFields) => string;
  parallel?: number;
  /** Handles a whole same-key group at once (instead of `handle` per entry); all are acked after. */
  handleGroup?: (entries: StreamFields[]) => Promise<void>;
}

type Entry = [string, string[]];

export function consumerName(): string {
  return `directus-${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

async function ensureGroup(redis: Redis, stream: string, group: string, startId: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, group, startId, 'MKSTREAM');
  } catch (err) {
    if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
  }
}

/** Starts the loop; the returned function stops it and closes its connection. */
export function startConsumer(runtime: Runtime, name: string, opts: ConsumerOptions): () => Promise<void> {
  const redis = newClient(runtime, name);
  const consumer = consumerName();
  const blockMs = opts.blockMs ?? 2000;
  const count = opts.count ?? 100;
  let stopped = false;
  let lastClaim = 0;

  const handleOne = async (id: string, fields: StreamFields) => {
    if (stopped) return;
    try {
      await opts.handle?.(id, fields);
    } catch (err) {
      if (!(err instanceof PoisonEntryError)) {
        opts.logger.warn({ err, stream: opts.stream, id }, 'fleet commands: entry not handled; will retry');
        return;
      }
      opts.logger.error({ err, stream: opts.stream, id }, 'fleet commands: unreadable entry dropped');
    }
    await redis.xack(opts.stream, opts.group, id);
  };

  const handleAll = async (entries: Entry[]) => {
    if (!opts.keyOf) {
      for (const [id, fields] of entries) await handleOne(id, fields);
      return;
    }
    const groups = new Map<string, Entry[]>();
    for (const entry of entries) {
      let key = '';
      try {
        key = opts.keyOf(entry[1]);
      } catch {
        // handled (and dropped) as unreadable by handleOne
      }
      const list = groups.get(key);
      if (list) list.push(entry);
      else groups.set(key, [entry]);
    }
    const queue = [...groups.values()];
    const workers = Array.from({ length: Math.min(opts.parallel ?? 8, queue.length) }, async () => {
      for (let group = queue.shift(); group; group = queue.shift()) {
        if (stopped) return;
        if (!opts.handleGroup) {
          for (const [id, fields] of group) await handleOne(id, fields);
          continue;
        }
        try {
          await opts.handleGroup(group.map(([, fields]) => fields));
        } catch (err) {
          opts.logger.warn({ err, stream: opts.stream }, 'fleet commands: entries not handled; will retry');
          continue;
        }
        await redis.xack(opts.stream, opts.group, ...group.map(([id]) => id));
      }
    });
    await Promise.all(workers);
  };

  const loop = async () => {
    let groupReady = false;
    while (!stopped) {
      try {
        if (!groupReady) {
          await ensureGroup(redis, opts.stream, opts.group, opts.startId);
          groupReady = true;
        }
        if (Date.now() - lastClaim >= runtime.config.claimIdleMs / 2) {
          lastClaim = Date.now();
          // Entries a crashed consumer (or a failed handler here) left pending.
          const claimed = (await redis.xautoclaim(
            opts.stream,
            opts.group,
            consumer,
            runtime.config.claimIdleMs,
            '0-0',
            'COUNT',
            count,
          )) as [string, Entry[]];
          await handleAll(claimed[1].filter((e) => e && Array.isArray(e[1])));
        }
        const res = (await redis.xreadgroup(
          'GROUP',
          opts.group,
          consumer,
          'COUNT',
          count,
          'BLOCK',
          blockMs,
          'STREAMS',
          opts.stream,
          '>',
        )) as Array<[string, Entry[]]> | null;
        if (res) for (const [, entries] of res) await handleAll(entries);
      } catch (err) {
        if (stopped) return;
        if (String((err as Error).message).includes('NOGROUP')) groupReady = false;
        opts.logger.warn({ err, stream: opts.stream }, 'fleet commands: stream read failed; retrying');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };

  const done = loop();
  return async () => {
    stopped = true;
    redis.disconnect();
    await done;
  };
}
