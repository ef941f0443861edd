/**
 * The one way to read a Redis stream in a consumer group, for the daemon and the extension alike.
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

/** An entry as read, before decoding. */
export interface RawEntry {
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
  stream: string;
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

export class StreamReader<T> {
  private groupReady = false;
  /** Where the next history read starts; null once this consumer's pending entries are read. */
  private historyCursor: string | null = '0-0';
  private claimCursor = '0-0';
  private nextClaimAt = 0;
  private readonly count: number;
  private readonly blockMs: number;

  constructor(
    private readonly message: { decode(fields: StreamFields): T },
    private readonly o: StreamReaderOptions,
  ) {
    this.count = o.count ?? 100;
    this.blockMs = o.blockMs ?? 1000;
  }

  get stream(): string {
    return this.o.stream;
  }

  /** Reads this consumer's pending entries again before anything else (after a failed handler). */
  rewind(): void {
    this.historyCursor = '0-0';
  }

  /**
   * The next batch: history, then claimed, then new entries. Empty when nothing arrived within
   * `blockMs`. Throws what Redis refused, except NOGROUP: then the group is created again and the
   * batch is empty.
   */
  async read(): Promise<ReadBatch<T>> {
    const { redis, stream, group, consumer } = this.o;
    try {
      if (!this.groupReady) {
        await ensureGroup(redis, stream, group, this.o.startId ?? '0');
        this.groupReady = true;
      }
      if (this.historyCursor !== null) {
        const raw = await readGroup(redis, stream, group, consumer, this.count, this.historyCursor, 0);
        this.historyCursor = raw.length > 0 ? raw[raw.length - 1]!.id : null;
        if (raw.length > 0) return this.batch('history', raw);
      }
      if (this.o.claimIdleMs !== undefined && Date.now() >= this.nextClaimAt && (this.o.mayClaim?.() ?? true)) {
        const page = await autoClaim(redis, stream, group, consumer, this.o.claimIdleMs, this.claimCursor, this.count);
        this.claimCursor = page.cursor;
        // A full pass over the pending list, then wait: claiming is for entries others abandoned.
        if (page.cursor === '0-0') this.nextClaimAt = Date.now() + (this.o.claimIntervalMs ?? this.o.claimIdleMs / 2);
        if (page.entries.length > 0) return this.batch('claimed', page.entries);
      }
      if (this.o.signal?.aborted) return { phase: 'new', entries: [] };
      const raw = await readGroup(this.o.reader ?? redis, stream, group, consumer, this.count, '>', this.blockMs);
      return this.batch('new', raw);
    } catch (err) {
      if (!isNoGroupError(err)) throw err;
      // Redis lost the group (a restart without persistence, or someone deleted the stream).
      this.groupReady = false;
      this.historyCursor = '0-0';
      this.o.onGroupLost?.();
      return { phase: 'new', entries: [] };
    }
  }

  ack(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return Promise.resolve(0);
    return this.o.redis.xack(this.o.stream, this.o.group, ...ids);
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
        if (opts.ack === 'batch') await this.ack(batch.entries.map((e) => e.id));
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
      await fillDeliveryCounts(this.o.redis, this.o.stream, this.o.group, this.o.consumer, raw);
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
