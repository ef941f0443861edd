/**
 * Batches XADDs from every socket into one write per event-loop turn, so throughput does not
 * depend on one round trip per frame. Each caller gets a promise that settles with the reply to its
 * own entry: an entry rejected by Redis (or lost with the connection) rejects only its own frame.
 *
 * A batch of a few entries is their XADD commands, written while the client's socket is corked (one
 * write, as a pipeline would be, without a pipeline object's own cost). A larger one is one call of
 * the contract's `fleetAppendEntries` script carrying all its entries as one argument; the script
 * XADDs each with the fields its caller encoded and answers each entry's id (or its own error).
 * ioredis' per-command objects and per-argument encoding were the largest part of the daemon's
 * allocation per frame under load (see daemon/bench/ingest.md); running the script costs Redis
 * more per entry than plain XADDs, hence only for batches where it saves the daemon more.
 *
 * Sinks are told at most `MAX_TOLD_PER_TURN` outcomes per event-loop turn; the rest wait for the
 * next turn, after the loop has read sockets and run timers again.
 *
 * A batch Redis does not answer within `timeoutMs` fails all its entries (their frames are not
 * acknowledged; the devices resend). That is one timer per batch: give the writer a client
 * without ioredis' `commandTimeout`, which would arm its own timer per command.
 *
 * In a Redis Cluster a batch must stay on one node, so it is split into one pipeline per stream
 * (each telemetry partition is one slot). With `waitReplicas`, each batch ends with `WAIT n` on
 * the same connection: its entries resolve only once n replicas have them, so a master that dies
 * right after answering cannot take an acknowledged frame with it when its replica takes over.
 */
import type { Redis } from 'ioredis';
import { APPEND_ENTRIES, appendEntriesArgs, isClusterClient, type StreamEntry } from '../contract/index.js';

/**
 * From this many entries a batch is one script call; smaller ones are plain XADDs. The writer alone
 * against a local Redis (CPU per entry, see daemon/bench/ingest.md): at 4 entries the script costs
 * the client 9.0 µs per entry against 11.4 for XADDs, at 1-3 it costs the client about as much or
 * more, and Redis 3-8 µs more per entry than plain XADDs.
 */
const SCRIPT_MIN_ENTRIES = 4;

/**
 * Most outcomes told to sinks in one event-loop turn. The replies to a backlog arrive together
 * (several batches of up to `maxBatch` in one read), and a session told "written" writes its ack
 * at once: one socket write per entry, back to back, 10-25 µs each on the bench machine. Telling
 * a backlog of a few thousand entries in one go held the loop for 20-40 ms in profiled runs
 * (daemon/bench/ingest.md), during which no socket was read and no timer ran, so the next backlog
 * was larger still. 256 is 3-6 ms of acks; a fleet the daemon keeps up with sends batches of a
 * few entries and never reaches it.
 */
export const MAX_TOLD_PER_TURN = 256;

/**
 * Who is told how an entry went: a session (one frame in flight at a time) is its own sink, so a
 * frame costs no promise or closures of its own.
 */
export interface EntrySink {
  written(id: string): void;
  failed(err: Error): void;
}

interface Pending extends StreamEntry {
  sink: EntrySink;
}

/** A settled batch whose sinks are not all told yet: `ids` per entry, or `why` all failed. */
interface Outcome {
  batch: Pending[];
  ids: unknown[] | null;
  why: unknown;
  next: number;
}

export interface StreamWriterOptions {
  /** Most entries in one batch; a larger backlog is split across several. */
  maxBatch?: number;
  /** Called once per batch with its size and how long Redis took to answer it. */
  onBatch?: (entries: number, seconds: number) => void;
  /** A batch unanswered this long fails all its entries. Default: none (the client's own timeout). */
  timeoutMs?: number;
  /** Replicas that must confirm a batch's entries before they resolve (0, default: none). */
  waitReplicas?: number;
}

export class StreamWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  /** Entries sent and not yet told (awaiting Redis, or settled and waiting for their turn). */
  private inFlight = 0;
  private readonly outcomes: Outcome[] = [];
  /** Outcomes told since the last flush (each turn that had entries or outcomes to tell runs one). */
  private told = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatch: number;

  constructor(
    /** The client the entries are written with (it reconnects on its own after an outage). */
    readonly redis: Redis,
    private readonly options: StreamWriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
  }

  /** XADD key * fields…; resolves with the entry id once Redis has it. */
  add(key: string, fields: (string | Buffer)[]): Promise<string> {
    return new Promise<string>((resolve, reject) => this.append(key, fields, { written: resolve, failed: reject }));
  }

  /** XADD key * fields…; `sink` hears once, with the entry id or why it was not written. */
  append(key: string, fields: (string | Buffer)[], sink: EntrySink): void {
    this.queue.push({ key, fields, sink });
    this.schedule();
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushNow);
    }
  }

  private readonly flushNow = () => this.flush();

  /** Entries queued or awaiting Redis' answer. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  /** Resolves once every entry added so far has settled. */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private flush(): void {
    this.scheduled = false;
    this.told = 0;
    this.tell();
    const cluster = isClusterClient(this.redis);
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      if (!cluster) {
        this.send(batch, false);
        continue;
      }
      const byKey = new Map<string, Pending[]>();
      for (const p of batch) {
        const same = byKey.get(p.key);
        if (same) same.push(p);
        else byKey.set(p.key, [p]);
      }
      for (const same of byKey.values()) this.send(same, true);
    }
  }

  private send(batch: Pending[], cluster: boolean): void {
    this.inFlight += batch.length;
    const started = performance.now();
    const replicas = this.options.waitReplicas ?? 0;
    let settled = false;
    const settle = (replies: unknown, confirmed: unknown, failure?: unknown) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      this.options.onBatch?.(batch.length, (performance.now() - started) / 1000);
      let why = failure;
      if (why === undefined && replicas > 0 && !(Number(confirmed) >= replicas)) {
        why = new Error(`fewer than ${replicas} replica(s) confirmed ${batch.length} XADDs`);
      }
      const ids = why === undefined && Array.isArray(replies) ? replies : null;
      this.outcomes.push({ batch, ids, why, next: 0 });
      this.tell();
    };
    const { timeoutMs } = this.options;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => settle(null, null, new Error(`Redis did not answer ${batch.length} XADDs within ${timeoutMs} ms`)),
            timeoutMs,
          );
    this.issue(batch, cluster, replicas, timeoutMs ?? 5000).then(
      ([replies, confirmed]) => settle(replies, confirmed),
      (err: unknown) => settle(null, null, err),
    );
  }

  /** Tells sinks their outcomes in order, up to MAX_TOLD_PER_TURN; the rest in a later turn. */
  private tell(): void {
    while (this.outcomes.length > 0) {
      if (this.told >= MAX_TOLD_PER_TURN) {
        this.schedule();
        return;
      }
      const o = this.outcomes[0] as Outcome;
      const i = o.next++;
      if (o.next === o.batch.length) this.outcomes.shift();
      this.inFlight--;
      this.told++;
      const p = o.batch[i] as Pending;
      const r: unknown = o.ids?.[i];
      // One sink's failure must not keep the rest of the batch from hearing.
      try {
        if (typeof r === 'string') p.sink.written(r);
        else p.sink.failed(toError(r ?? o.why ?? new Error('no reply from Redis')));
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * Sends a batch (and its WAIT) in one write on one connection; resolves with one reply per
   * entry (its id, or the Error Redis gave it) and WAIT's answer.
   *
   * The script goes as EVAL with its source, not EVALSHA: ioredis resends an EVALSHA that Redis
   * answered NOSCRIPT (after a SCRIPT FLUSH) on its own, behind the WAIT, which would then not
   * cover those entries. Redis caches the compiled script either way.
   */
  private issue(batch: Pending[], cluster: boolean, replicas: number, waitMs: number): Promise<[unknown[], unknown]> {
    const script = batch.length >= SCRIPT_MIN_ENTRIES ? appendEntriesArgs(batch) : null;
    if (cluster) {
      // WAIT has no key: a pipeline keeps it on the node that ran the entries.
      const pipeline = this.redis.pipeline();
      if (script) pipeline.eval(APPEND_ENTRIES.lua, ...script);
      else for (const p of batch) pipeline.xaddBuffer(p.key, '*', ...p.fields);
      if (replicas > 0) pipeline.wait(replicas, waitMs);
      return pipeline.exec().then((results) => {
        if (!results) throw new Error('no reply from Redis');
        const sent = script ? 1 : batch.length;
        const waited = results[sent];
        if (waited?.[0]) throw waited[0];
        if (!script) return [results.slice(0, sent).map(([err, id]) => err ?? String(id)), waited?.[1]];
        const [err, replies] = results[0] ?? [];
        if (err) throw err;
        return [replies as unknown[], waited?.[1]];
      });
    }
    const socket = this.redis.stream as Redis['stream'] | undefined;
    socket?.cork();
    const replies: Promise<unknown[]> = script
      ? (this.redis.eval(APPEND_ENTRIES.lua, ...script) as Promise<unknown[]>)
      : Promise.all(batch.map((p) => this.redis.xaddBuffer(p.key, '*', ...p.fields).then(String, asReply)));
    const confirmed = replicas > 0 ? this.redis.wait(replicas, waitMs) : null;
    socket?.uncork();
    return Promise.all([replies, confirmed]);
  }
}

/** An entry's error as its reply, so that it fails its own frame only. */
const asReply = (err: unknown) => err;

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
