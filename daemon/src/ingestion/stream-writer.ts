/**
 * Batches XADDs from every socket into one write per event-loop turn, so throughput does not
 * depend on one round trip per frame. Each caller gets a promise that settles with the reply to its
 * own entry: an entry rejected by Redis (or lost with the connection) rejects only its own frame.
 *
 * A batch is one call of the contract's `fleetAppendEntries` script, which XADDs each entry with
 * the fields its caller encoded and answers each entry's id (or its own error): one ioredis command
 * and one RESP write per batch instead of one per entry. ioredis' per-command objects and their
 * encoding were the largest part of the daemon's CPU and allocation per frame (see
 * daemon/bench/ingest.md).
 *
 * A batch Redis does not answer within `timeoutMs` fails all its entries (their frames are not
 * acknowledged; the devices resend). That is one timer per batch: give the writer a client
 * without ioredis' `commandTimeout`, which would arm its own timer per command.
 *
 * In a Redis Cluster a script may touch one slot only, so a batch is split into one call per stream
 * (each telemetry partition is one slot). With `waitReplicas`, each call is followed by `WAIT n` on
 * the same connection: its entries resolve only once n replicas have them, so a master that dies
 * right after answering cannot take an acknowledged frame with it when its replica takes over.
 */
import type { Redis } from 'ioredis';
import {
  APPEND_ENTRIES,
  appendEntriesArgs,
  type ContractCommands,
  defineContractScripts,
  isClusterClient,
  type StreamEntry,
} from '../contract/index.js';

interface Pending extends StreamEntry {
  resolve: (id: string) => void;
  reject: (err: Error) => void;
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
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatch: number;
  private readonly redis: Redis & ContractCommands;

  constructor(
    redis: Redis,
    private readonly options: StreamWriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.redis = defineContractScripts(redis, [APPEND_ENTRIES]);
  }

  /** XADD key * fields…; resolves with the entry id once Redis has it. */
  add(key: string, fields: (string | Buffer)[]): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.queue.push({ key, fields, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

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
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i] as Pending;
        const r: unknown = ids?.[i];
        if (typeof r === 'string') p.resolve(r);
        else p.reject(toError(r ?? why ?? new Error('no reply from Redis')));
      }
      this.inFlight -= batch.length;
      if (this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
    const { timeoutMs } = this.options;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => settle(null, null, new Error(`Redis did not answer ${batch.length} XADDs within ${timeoutMs} ms`)),
            timeoutMs,
          );
    const args = appendEntriesArgs(batch);
    if (replicas === 0) {
      this.redis.fleetAppendEntries(...args).then(
        (replies) => settle(replies, null),
        (err: unknown) => settle(null, null, err),
      );
      return;
    }
    // With WAIT, the script goes as plain EVAL (its source, not its digest): ioredis would resend an
    // EVALSHA Redis answered NOSCRIPT (after a SCRIPT FLUSH) behind the WAIT, which would then not
    // cover those entries. Both commands leave in one write on one connection.
    const [numkeys, ...rest] = args as [string, ...(string | Buffer)[]];
    const waitMs = timeoutMs ?? 5000;
    if (cluster) {
      // WAIT has no key: a pipeline keeps it on the node that ran the script.
      const pipeline = this.redis.pipeline();
      pipeline.eval(APPEND_ENTRIES.lua, numkeys, ...rest);
      pipeline.wait(replicas, waitMs);
      pipeline.exec().then(
        (results) => {
          const [appended, waited] = results ?? [];
          const err = appended?.[0] ?? waited?.[0];
          if (err) settle(null, null, err);
          else settle(appended?.[1], waited?.[1]);
        },
        (err: unknown) => settle(null, null, err),
      );
      return;
    }
    const socket = this.redis.stream as Redis['stream'] | undefined;
    socket?.cork();
    Promise.all([this.redis.eval(APPEND_ENTRIES.lua, numkeys, ...rest), this.redis.wait(replicas, waitMs)]).then(
      ([replies, confirmed]) => settle(replies, confirmed),
      (err: unknown) => settle(null, null, err),
    );
    socket?.uncork();
  }
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
