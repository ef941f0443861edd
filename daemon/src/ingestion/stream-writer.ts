/**
 * Batches XADDs from every socket into one write per event-loop turn, so throughput does not
 * depend on one round trip per frame. Each caller gets a promise that settles with the reply to its
 * own entry: an entry rejected by Redis (or lost with the connection) rejects only its own frame.
 *
 * On one Redis a batch is the XADD commands themselves, sent while the client's socket is corked
 * (one write, as a pipeline would be): an ioredis pipeline object per batch cost about as much as
 * the commands at the few entries per turn a steady fleet gives (see daemon/bench/ingest.md).
 *
 * A batch Redis does not answer within `timeoutMs` fails all its entries (their frames are not
 * acknowledged; the devices resend). That is one timer per batch: give the writer a client
 * without ioredis' `commandTimeout`, which would arm and clear one timer per XADD.
 *
 * In a Redis Cluster a batch must stay on one node, so it is split into one pipeline per stream
 * (each telemetry partition is one slot). With `waitReplicas`, each batch ends with `WAIT n`: its
 * entries resolve only once n replicas have them, so a master that dies right after answering
 * cannot take an acknowledged frame with it when its replica takes over.
 */
import type { Redis } from 'ioredis';
import { isClusterClient } from '../contract/index.js';

interface Pending {
  key: string;
  fields: (string | Buffer)[];
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

  constructor(
    private readonly redis: Redis,
    private readonly options: StreamWriterOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
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
    const settle = (results: [Error | null, unknown][] | null, failure?: unknown) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      this.options.onBatch?.(batch.length, (performance.now() - started) / 1000);
      const confirmed = results?.[batch.length];
      const unreplicated =
        replicas > 0 && results !== null && !(confirmed && !confirmed[0] && Number(confirmed[1]) >= replicas);
      const why = unreplicated
        ? new Error(`fewer than ${replicas} replica(s) confirmed ${batch.length} XADDs`)
        : failure;
      batch.forEach((p, i) => {
        const r = unreplicated ? undefined : results?.[i];
        if (r && !r[0] && r[1] != null) p.resolve(String(r[1]));
        else p.reject(toError(r?.[0] ?? why ?? new Error('no reply from Redis')));
      });
      this.inFlight -= batch.length;
      if (this.pending === 0) for (const w of this.idleWaiters.splice(0)) w();
    };
    const { timeoutMs } = this.options;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(
            () => settle(null, new Error(`Redis did not answer ${batch.length} XADDs within ${timeoutMs} ms`)),
            timeoutMs,
          );
    if (cluster) {
      const pipeline = this.redis.pipeline();
      for (const p of batch) pipeline.xaddBuffer(p.key, '*', ...p.fields);
      if (replicas > 0) pipeline.wait(replicas, timeoutMs ?? 5000);
      pipeline.exec().then(
        (results) => settle(results),
        (err: unknown) => settle(null, err),
      );
      return;
    }
    // Replies in the shape a pipeline's exec() gives, filled as they come.
    const results: [Error | null, unknown][] = new Array(batch.length + (replicas > 0 ? 1 : 0));
    let awaited = results.length;
    const reply = (i: number, err: Error | null, value: unknown) => {
      results[i] = [err, value];
      if (--awaited === 0) settle(results);
    };
    const socket = this.redis.stream as Redis['stream'] | undefined;
    socket?.cork();
    batch.forEach((p, i) => {
      this.redis.xaddBuffer(p.key, '*', ...p.fields).then(
        (id) => reply(i, null, id),
        (err: Error) => reply(i, err, null),
      );
    });
    if (replicas > 0) {
      this.redis.wait(replicas, timeoutMs ?? 5000).then(
        (n) => reply(batch.length, null, n),
        (err: Error) => reply(batch.length, err, null),
      );
    }
    socket?.uncork();
  }
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
