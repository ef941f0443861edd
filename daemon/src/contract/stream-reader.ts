/**
 * The one way to read a Redis stream in a consumer group, for the daemon and the extension alike.
 *
 * A reader covers one stream or several (the telemetry partitions: every entry says which stream
 * it came from, and is acknowledged there). On one Redis, new entries of several streams come from
 * one blocking XREADGROUP. In a Redis Cluster the streams live in different slots and one command
 * cannot name them all, so each is read without blocking, and only when all were empty does the
 * reader block briefly on one of them in turn (`CLUSTER_BLOCK_MS`).
 *
 * A `StreamReader` creates its group (and creates it again when Redis lost it: NOGROUP), reads
 * this consumer's own pending entries first ('history': a restart under the same name), then
 * entries idle consumers left behind ('claimed', when `claimIdleMs` is set), then new ones
 * ('new', blocking up to `blockMs`). Values are read as Buffers and decoded by the contract's
 * message definition, so binary fields keep every byte and text fields are decoded in one place.
 * `run` adds the loop: ack policy, retry with back-off, and waits that end when `signal` aborts.
 */
import type { Redis } from 'ioredis';
import type { StreamFields } from './messages.js';
import { isClusterClient } from './redis.js';

/** An entry as read, before decoding. */
export interface RawEntry {
  /** The stream it was read from (one of the reader's). */
  stream: string;
  id: string;
  /** null when the entry was deleted/trimmed while still pending. */
  fields: Buffer[] | null;
  /** Times delivered (1 for a first read with `>`; from the pending list when `deliveryCounts`). */
  deliveries: number;
}

export type ReadPhase = 'history' | 'claimed' | 'new';

/** A read entry with its decoded value, or why it could not be decoded (no retry can fix that). */
export type ReadEntry<T> = RawEntry & ({ ok: true; value: T } | { ok: false; error: string });

export interface ReadBatch<T> {
  phase: ReadPhase;
  entries: ReadEntry<T>[];
}

export interface StreamReaderOptions {
  /** Non-blocking commands (group creation, XACK, XAUTOCLAIM, XPENDING). */
  redis: Redis;
  /** Blocking reads; give a dedicated connection so a blocked read never delays the others. */
  reader?: Redis;
  /** The stream, or several read as one (each entry names its own). */
  stream: string | readonly string[];
  group: string;
  consumer: string;
  /** Where a new group starts: '0' replays the stream's history, '$' only new entries. */
  startId?: '0' | '$';
  count?: number;
  blockMs?: number;
  /** Take over entries other consumers left pending this long; never when unset. */
  claimIdleMs?: number;
  /** Pause between two full passes over the pending list (default half of `claimIdleMs`). */
  claimIntervalMs?: number;
  /** Claiming waits while this says no (say, while the database is failing: claimed entries would fail too). */
  mayClaim?: () => boolean;
  /** Told when Redis had lost the group and it was created again. */
  onGroupLost?: () => void;
  /** Fill in `deliveries` of history and claimed entries from the group's pending list. */
  deliveryCounts?: boolean;
  /** Ends `run` and its waits. */
  signal?: AbortSignal;
}

export interface RunOptions<T> {
  /**
   * `batch`: every entry of a batch is acknowledged once the handler resolves (undecodable ones
   * too: the handler has seen them); if it throws, nothing is, and this consumer's pending entries
   * are read again first. `handler`: the handler acknowledges with `ack` itself.
   */
  ack: 'batch' | 'handler';
  handle(batch: ReadBatch<T>): Promise<void>;
  /** A failed read or handler; the loop waits `retryDelayMs(attempt)` and goes on. */
  onError(err: unknown, attempt: number): void;
  retryDelayMs?: (attempt: number) => number;
}

export async function ensureGroup(
  redis: Redis,
  stream: string,
  group: string,
  startId: '0' | '$' = '0',
): Promise<void> {
  try {
    await redis.xgroup('CREATE', stream, group, startId, 'MKSTREAM');
  } catch (err) {
    if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err;
  }
}

export function isNoGroupError(err: unknown): boolean {
  return String((err as Error | undefined)?.message ?? '').startsWith('NOGROUP');
}

type EntryReply = [Buffer, Buffer[] | null];

/** Parses the entries of every stream in an XREADGROUP reply (Buffer mode), in reply order. */
export function parseReadReply(reply: unknown): RawEntry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  return (reply as [Buffer, EntryReply[] | null][]).flatMap(([stream, entries]) => {
    const name = stream.toString();
    return (entries ?? []).map(([id, fields]) => ({ stream: name, id: id.toString(), fields, deliveries: 1 }));
  });
}

export async function readGroup(
  redis: Redis,
  stream: string | readonly string[],
  group: string,
  consumer: string,
  /** Per stream. */
  count: number,
  /** '>' for new entries, or an id: own pending entries after it ('0-0' for all). */
  from: string,
  blockMs: number,
): Promise<RawEntry[]> {
  const streams = typeof stream === 'string' ? [stream] : stream;
  const args: (string | number)[] = ['GROUP', group, consumer, 'COUNT', count];
  if (from === '>' && blockMs > 0) args.push('BLOCK', blockMs);
  args.push('STREAMS', ...streams, ...streams.map(() => from));
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
    entries: (reply[1] ?? []).map(([id, fields]) => ({ stream, id: id.toString(), fields, deliveries: 1 })),
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

/** For readers that decode entries themselves: the fields as read. */
export const RAW_FIELDS = { decode: (fields: StreamFields) => fields as Buffer[] };

export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const d = BigInt(am) - BigInt(bm);
  if (d !== 0n) return d < 0n ? -1 : 1;
  const e = BigInt(as) - BigInt(bs);
  return e === 0n ? 0 : e < 0n ? -1 : 1;
}

/** Waits `ms`, or less if `signal` aborts; resolves either way so a stop never becomes a rejection. */
export function abortableWait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

const defaultRetryDelay = (attempt: number) => Math.min(5000, 100 * 2 ** Math.min(attempt, 6));

/** In a cluster, how long one stream of several is waited on when all were empty (see the header). */
export const CLUSTER_BLOCK_MS = 50;

export class StreamReader<T> {
  private groupReady = false;
  private readonly streams: readonly string[];
  /** Per stream: where the next history read starts; absent once its pending entries are read. */
  private readonly historyCursors = new Map<string, string>();
  /** Streams still to be claimed from in this pass, with their cursors. */
  private claimCursors = new Map<string, string>();
  private nextClaimAt = 0;
  /** In a cluster: the stream the next idle wait blocks on. */
  private turn = 0;
  private readonly count: number;
  private readonly blockMs: number;

  constructor(
    private readonly message: { decode(fields: StreamFields): T },
    private readonly o: StreamReaderOptions,
  ) {
    this.streams = typeof o.stream === 'string' ? [o.stream] : [...o.stream];
    if (this.streams.length === 0) throw new Error('StreamReader needs a stream');
    this.count = o.count ?? 100;
    this.blockMs = o.blockMs ?? 1000;
    this.rewind();
  }

  /** The first (with one stream, the only) stream. */
  get stream(): string {
    return this.streams[0]!;
  }

  /** Reads this consumer's pending entries again before anything else (after a failed handler). */
  rewind(): void {
    for (const s of this.streams) this.historyCursors.set(s, '0-0');
  }

  /**
   * The next batch: history, then claimed, then new entries. Empty when nothing arrived within
   * `blockMs`. Throws what Redis refused, except NOGROUP: then the group is created again and the
   * batch is empty.
   */
  async read(): Promise<ReadBatch<T>> {
    const { redis, group, consumer } = this.o;
    try {
      if (!this.groupReady) {
        for (const s of this.streams) await ensureGroup(redis, s, group, this.o.startId ?? '0');
        this.groupReady = true;
      }
      for (const [stream, cursor] of this.historyCursors) {
        const raw = await readGroup(redis, stream, group, consumer, this.count, cursor, 0);
        if (raw.length === 0) {
          this.historyCursors.delete(stream);
          continue;
        }
        this.historyCursors.set(stream, raw[raw.length - 1]!.id);
        return this.batch('history', raw);
      }
      if (this.o.claimIdleMs !== undefined && Date.now() >= this.nextClaimAt && (this.o.mayClaim?.() ?? true)) {
        if (this.claimCursors.size === 0) this.claimCursors = new Map(this.streams.map((s) => [s, '0-0']));
        for (const [stream, cursor] of this.claimCursors) {
          const page = await autoClaim(redis, stream, group, consumer, this.o.claimIdleMs, cursor, this.count);
          if (page.cursor === '0-0') this.claimCursors.delete(stream);
          else this.claimCursors.set(stream, page.cursor);
          if (page.entries.length > 0) return this.batch('claimed', page.entries);
        }
        // A full pass over the pending lists, then wait: claiming is for entries others abandoned.
        this.nextClaimAt = Date.now() + (this.o.claimIntervalMs ?? this.o.claimIdleMs / 2);
      }
      if (this.o.signal?.aborted) return { phase: 'new', entries: [] };
      return this.batch('new', await this.readNew());
    } catch (err) {
      if (!isNoGroupError(err)) throw err;
      // Redis lost the group (a restart without persistence, or someone deleted the stream).
      this.groupReady = false;
      this.rewind();
      this.o.onGroupLost?.();
      return { phase: 'new', entries: [] };
    }
  }

  private async readNew(): Promise<RawEntry[]> {
    const { redis, group, consumer } = this.o;
    const reader = this.o.reader ?? redis;
    const n = this.streams.length;
    // Several streams share the batch size (COUNT applies to each stream).
    const count = Math.max(1, Math.ceil(this.count / n));
    if (n === 1 || !isClusterClient(redis)) {
      return readGroup(reader, this.streams, group, consumer, count, '>', this.blockMs);
    }
    const found = (
      await Promise.all(this.streams.map((s) => readGroup(redis, s, group, consumer, count, '>', 0)))
    ).flat();
    if (found.length > 0) return found;
    const stream = this.streams[this.turn++ % n]!;
    return readGroup(reader, stream, group, consumer, count, '>', Math.min(this.blockMs, CLUSTER_BLOCK_MS));
  }

  /** XACK of `ids` in `stream` (which may be left out when the reader has one stream). */
  ack(ids: readonly string[], stream?: string): Promise<number> {
    if (ids.length === 0) return Promise.resolve(0);
    if (stream === undefined && this.streams.length > 1) throw new Error('ack: name the stream');
    return this.o.redis.xack(stream ?? this.stream, this.o.group, ...ids);
  }

  /** XACK of entries read from any of the reader's streams. */
  async ackEntries(entries: readonly Pick<RawEntry, 'stream' | 'id'>[]): Promise<void> {
    for (const [stream, ids] of byStream(entries)) await this.ack(ids, stream);
  }

  /** Reads and handles until `signal` aborts. */
  async run(opts: RunOptions<T>): Promise<void> {
    const delay = opts.retryDelayMs ?? defaultRetryDelay;
    let attempt = 0;
    while (!this.o.signal?.aborted) {
      let stage: 'read' | 'handle' = 'read';
      try {
        const batch = await this.read();
        if (batch.entries.length === 0) continue;
        stage = 'handle';
        await opts.handle(batch);
        if (opts.ack === 'batch') await this.ackEntries(batch.entries);
        attempt = 0;
      } catch (err) {
        if (this.o.signal?.aborted) return;
        // The batch is still pending under our name: handle it again before anything newer.
        if (stage === 'handle' && opts.ack === 'batch') this.rewind();
        attempt++;
        opts.onError(err, attempt);
        await abortableWait(delay(attempt), this.o.signal);
      }
    }
  }

  private async batch(phase: ReadPhase, raw: RawEntry[]): Promise<ReadBatch<T>> {
    if (phase !== 'new' && this.o.deliveryCounts) {
      for (const [stream] of byStream(raw)) {
        const mine = raw.filter((e) => e.stream === stream);
        await fillDeliveryCounts(this.o.redis, stream, this.o.group, this.o.consumer, mine);
      }
    }
    return { phase, entries: raw.map((e) => this.decode(e)) };
  }

  private decode(e: RawEntry): ReadEntry<T> {
    if (e.fields === null) return { ...e, ok: false, error: 'entry deleted while pending' };
    try {
      return { ...e, ok: true, value: this.message.decode(e.fields) };
    } catch (err) {
      return { ...e, ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }
}

/** Entry ids grouped by their stream, in first-seen order. */
export function byStream(entries: readonly Pick<RawEntry, 'stream' | 'id'>[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of entries) {
    const ids = out.get(e.stream);
    if (ids) ids.push(e.id);
    else out.set(e.stream, [e.id]);
  }
  return out;
}
