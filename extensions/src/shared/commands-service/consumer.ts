/**
 * The extension's stream consumers, on the contract's StreamReader: it reads (own pending, then
 * entries idle longer than `claimIdleMs` that any Directus instance left, then new ones), this
 * file groups entries by key and acknowledges each group once handled. A group whose handler
 * throws (database down, say) stays pending and is claimed again after `claimIdleMs`; an entry
 * that cannot even be decoded is logged and acknowledged, since no retry can fix it.
 */
import { hostname } from 'node:os';
import { type ReadEntry, type StreamFields, StreamReader } from '@fleet/daemon/contract';
import { newClient, type Runtime } from './runtime';

export interface ConsumerOptions<T> {
  stream: string;
  group: string;
  /** Where a new group starts: '0' replays the stream's history, '$' only new entries. */
  startId: '0' | '$';
  message: { decode(fields: StreamFields): T };
  logger: { warn(obj: unknown, msg: string): void; error(obj: unknown, msg: string): void };
  blockMs?: number;
  count?: number;
  /**
   * Entries with the same key are handled together, in stream order; different keys run side by
   * side (up to `parallel`).
   */
  keyOf: (value: T) => string;
  parallel?: number;
  /** Handles one key's entries at once; all are acknowledged after it resolves. */
  handleGroup: (values: T[]) => Promise<void>;
}

export function consumerName(): string {
  return `directus-${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Starts the loop; the returned function stops it and closes its connection. */
export function startConsumer<T>(runtime: Runtime, name: string, opts: ConsumerOptions<T>): () => Promise<void> {
  const redis = newClient(runtime, name);
  const stop = new AbortController();
  const reader = new StreamReader(opts.message, {
    redis,
    stream: opts.stream,
    group: opts.group,
    consumer: consumerName(),
    startId: opts.startId,
    count: opts.count ?? 100,
    blockMs: opts.blockMs ?? 2000,
    claimIdleMs: runtime.config.claimIdleMs,
    signal: stop.signal,
  });

  const handleAll = async (entries: ReadEntry<T>[]) => {
    const groups = new Map<string, { ids: string[]; values: T[] }>();
    const unreadable: string[] = [];
    for (const entry of entries) {
      if (!entry.ok) {
        opts.logger.error(
          { err: entry.error, stream: opts.stream, id: entry.id },
          'fleet commands: unreadable entry dropped',
        );
        unreadable.push(entry.id);
        continue;
      }
      const key = opts.keyOf(entry.value);
      const group = groups.get(key) ?? { ids: [], values: [] };
      group.ids.push(entry.id);
      group.values.push(entry.value);
      groups.set(key, group);
    }
    await reader.ack(unreadable);
    const queue = [...groups.values()];
    const workers = Array.from({ length: Math.min(opts.parallel ?? 8, queue.length) }, async () => {
      for (let group = queue.shift(); group; group = queue.shift()) {
        if (stop.signal.aborted) return;
        try {
          await opts.handleGroup(group.values);
        } catch (err) {
          opts.logger.warn({ err, stream: opts.stream }, 'fleet commands: entries not handled; will retry');
          continue;
        }
        await reader.ack(group.ids);
      }
    });
    await Promise.all(workers);
  };

  const done = reader.run({
    ack: 'handler',
    retryDelayMs: () => 1000,
    handle: ({ entries }) => handleAll(entries),
    onError: (err) => opts.logger.warn({ err, stream: opts.stream }, 'fleet commands: stream read failed; retrying'),
  });
  return async () => {
    stop.abort();
    redis.disconnect();
    await done;
  };
}
