/**
 * The telemetry consumer: `telemetry:avl` → positions rows, exactly once.
 *
 * Loop: read a batch in group `processors` (own pending entries first, then claimed ones from dead
 * consumers, then new ones), decode, write rows + device state in one statement, and only then
 * XACK. The next read is already in flight while a batch is written (two Redis connections), so
 * the loop is not a sequence of round trips.
 *
 * Nothing is acknowledged before it is committed, and a commit repeated after a crash adds no row
 * (see writer.ts), so any crash anywhere leaves every entry either committed-and-acked,
 * committed-and-pending (replayed harmlessly) or pending. Entries that can never succeed (invalid,
 * undecodable, unknown device, rejected by the database) go to `telemetry:dead` and are
 * acknowledged in the same MULTI, so they never block the group. An entry whose handling throws
 * for another reason is isolated and its failures counted (`telemetry:failures`); it is
 * dead-lettered after `maxFailures` of them. Deliveries are never counted against an entry: they
 * grow with every restart and claim, so a processor restarted while PostgreSQL is down would
 * otherwise dead-letter its whole backlog.
 */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import {
  DeadLetter,
  encodeDeadLetter,
  GROUPS,
  RAW_FIELDS,
  type RedisKeys,
  StreamReader,
  type TelemetryEntry,
  TelemetryMessage,
  type TelemetryPartition,
} from '../contract/index.js';
import type { Logger } from '../observability/logger.js';
import { sleep } from '../sleep.js';
import { acknowledge, type DeadEntry, isolateRejections, triage, type WriteAttempt } from './batch.js';
import { protocolIoViews } from './decode.js';
import { backoffMs, classifyWriteError, errorMessage, isForeignKeyViolation } from './errors.js';
import type { ProcessorMetrics } from './metrics.js';
import {
  countFlags,
  type DecodedEntry,
  emptyTrack,
  entriesToRows,
  flagJumps,
  type IoViews,
  latestPerDevice,
  type PositionRow,
  seenPerDevice,
  type TrackState,
} from './rows.js';
import { byStream, ensureGroup, type RawEntry } from './stream.js';
import { type DeviceId, PositionWriter, type WriteMethod } from './writer.js';

export interface TelemetryConsumerOptions {
  keys: RedisKeys;
  /** Consumer name in the group (the instance id). */
  consumer: string;
  batchSize: number;
  blockMs: number;
  claimIdleMs: number;
  /** How often to look for entries of dead consumers. */
  claimIntervalMs: number;
  /** Batches written concurrently (each on its own database connection). */
  maxInFlight: number;
  /** How rows reach PostgreSQL (see writer.ts). Default unnest (the daemon's config defaults to direct). */
  writeMethod?: WriteMethod;
  /** Unexpected failures of one entry before it is dead-lettered. */
  maxFailures: number;
  /** `telemetry:dead` keeps at most this many entries. */
  deadMaxLen: number;
  futureMarginMs: number;
  maxSpeedKmh: number;
  /** Record new rows for the history worker (history_dirty); default true. */
  markHistory?: boolean;
  /** Test-only seam: runs after a batch committed and before it is acknowledged. */
  afterCommit?: (ids: readonly string[]) => Promise<void>;
}

export interface TelemetryConsumerDeps {
  /** Connection used only for (blocking) reads, so a read can be in flight while acks go out. */
  reader: Redis;
  redis: Redis;
  pool: pg.Pool;
  logger: Logger;
  metrics: ProcessorMetrics;
  views?: IoViews;
}

interface Prepared {
  raw: RawEntry;
  /**
   * The entry without its decoded records: those are only needed to build `rows`, while a batch
   * stays in hand until its commit and XACK, so keeping them alive only gave the garbage collector
   * more to copy.
   */
  entry: Omit<DecodedEntry, 'records'>;
  rows: PositionRow[];
}

class Stopped extends Error {}

export class TelemetryConsumer {
  private stopping = false;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private readonly devices = new Map<string, { id: DeviceId; track: TrackState }>();
  private readonly writer: PositionWriter;
  private readonly views: IoViews;
  /** Own pending entries first (a restart with the same name), then claimed ones, then new ones. */
  private readonly reader: StreamReader<Buffer[]>;
  private dbFailing = false;
  /** Whether `telemetry:failures` may hold counts (then acknowledged ids are removed from it). */
  private failuresMayExist = true;

  constructor(
    private readonly opts: TelemetryConsumerOptions,
    private readonly deps: TelemetryConsumerDeps,
  ) {
    this.writer = new PositionWriter(deps.pool, opts.writeMethod, opts.markHistory ?? true);
    this.views = deps.views ?? protocolIoViews;
    // Entries are decoded in `handle` (a bad one becomes a dead letter, not a read failure).
    this.reader = new StreamReader(RAW_FIELDS, {
      redis: deps.redis,
      reader: deps.reader,
      stream: opts.keys.telemetry.map((t) => t.avl),
      group: GROUPS.processors,
      consumer: opts.consumer,
      count: opts.batchSize,
      blockMs: opts.blockMs,
      claimIdleMs: opts.claimIdleMs,
      claimIntervalMs: opts.claimIntervalMs,
      // While the database fails, claimed entries would only fail too.
      mayClaim: () => !this.dbFailing,
      deliveryCounts: true,
      signal: this.abort.signal,
      onGroupLost: () => this.deps.logger.warn('consumer group missing, recreating it'),
    });
  }

  start(): void {
    this.running = this.run().catch((err: unknown) => {
      if (!(err instanceof Stopped)) this.deps.logger.fatal({ err }, 'telemetry consumer crashed');
    });
  }

  /** Finishes the batch in hand (if the database lets it), then returns. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.running;
  }

  /** The partition an entry was read from (its dead-letter stream and failure counts). */
  private partition(raw: Pick<RawEntry, 'stream'>): TelemetryPartition {
    const p = this.opts.keys.partitionOf(raw.stream);
    if (!p) throw new Error(`entry from ${raw.stream}, which is no telemetry partition`);
    return p;
  }

  private async run(): Promise<void> {
    for (const { avl } of this.opts.keys.telemetry) {
      await this.retryRedis('create consumer group', () => ensureGroup(this.deps.redis, avl, GROUPS.processors));
    }
    const inFlight = new Set<Promise<void>>();
    let next = this.fetch();
    for (;;) {
      const batch = await next;
      if (this.stopping) {
        // Entries already read are still ours to finish; nothing new is read.
        await Promise.all(inFlight);
        if (batch.length > 0) await this.handleSafely(batch);
        return;
      }
      next = this.fetch();
      if (batch.length === 0) continue;
      // Up to `maxInFlight` batches are written at once (the database works on one while this
      // process decodes the next). Their order does not matter: rows are keyed, latest state only
      // moves forward, and each batch is acknowledged on its own after its own commit.
      const h: Promise<void> = this.handleSafely(batch).finally(() => inFlight.delete(h));
      inFlight.add(h);
      while (inFlight.size >= this.opts.maxInFlight) await Promise.race(inFlight);
    }
  }

  /**
   * A batch that throws for an unexpected reason (never a database or Redis outage: those are
   * retried where they happen) is handled again entry by entry, so only the entry at fault fails;
   * its failure is counted and it stays pending (claimed again later) until it has failed
   * `maxFailures` times.
   */
  private async handleSafely(batch: RawEntry[]): Promise<void> {
    try {
      await this.handle(batch);
    } catch (err) {
      if (err instanceof Stopped) return;
      if (batch.length > 1) {
        this.deps.logger.warn(
          { err: errorMessage(err), first: batch[0]?.id, count: batch.length },
          'batch failed unexpectedly; handling its entries one by one',
        );
        for (const raw of batch) await this.handleSafely([raw]);
        return;
      }
      await this.entryFailed(batch[0]!, err).catch((e: unknown) => {
        if (!(e instanceof Stopped)) throw e;
      });
    }
  }

  private async entryFailed(raw: RawEntry, err: unknown): Promise<void> {
    const key = this.partition(raw).failures;
    this.failuresMayExist = true;
    const failures = await this.retryRedis('count a failure', () => this.deps.redis.hincrby(key, raw.id, 1));
    if (failures >= this.opts.maxFailures) {
      await this.deadLetter({ raw, error: `failed ${failures} times: ${errorMessage(err)}`, cause: 'failures' });
      return;
    }
    this.deps.logger.error(
      { err, id: raw.id, failures, limit: this.opts.maxFailures },
      'entry failed unexpectedly; it stays pending and is tried again',
    );
  }

  /** The next batch to handle; never throws (Redis trouble → backoff and an empty batch). */
  private async fetch(): Promise<RawEntry[]> {
    if (this.stopping) return [];
    try {
      const { phase, entries } = await this.reader.read();
      if (phase === 'claimed') {
        this.deps.metrics.claimed.inc(entries.length);
        this.deps.logger.info(
          { count: entries.length, first: entries[0]!.id },
          'claimed entries idle on other consumers',
        );
      }
      return entries;
    } catch (err) {
      if (this.stopping) return [];
      this.deps.metrics.retries.inc({ dependency: 'redis' });
      this.deps.logger.warn({ err: errorMessage(err) }, 'reading telemetry failed; retrying');
      await sleep(backoffMs(1), this.abort.signal);
      return [];
    }
  }

  private async handle(batch: RawEntry[]): Promise<void> {
    const { gone, dead, decoded } = triage(batch);
    await this.resolveDevices(decoded.map((d) => d.entry.imei));
    const prepared: Prepared[] = [];
    // One processing time for the batch (the `future` flag's reference; its margin is hours).
    const rules = { now: Date.now(), futureMarginMs: this.opts.futureMarginMs };
    for (const { raw, entry } of decoded) {
      if (!this.devices.has(entry.imei)) {
        dead.push({ raw, error: `unknown device IMEI ${entry.imei}`, cause: 'unknown_device' });
        continue;
      }
      const rows = entriesToRows([entry], rules, this.views);
      prepared.push({ raw, entry: { id: entry.id, imei: entry.imei, receivedAt: entry.receivedAt }, rows });
    }
    const known = new Map<string, TrackState>();
    for (const p of prepared) {
      const d = this.devices.get(p.entry.imei);
      if (d) known.set(p.entry.imei, d.track);
    }
    const tracks = flagJumps(
      prepared.flatMap((p) => p.rows),
      known,
      this.opts.maxSpeedKmh,
    );

    const rejected = await isolateRejections(prepared, (items) => this.write(items));
    const rejectedIds = new Set(rejected.map((r) => r.item.entry.id));
    for (const { item, error, cause } of rejected) dead.push({ raw: item.raw, error, cause });
    const committed = prepared.filter((p) => !rejectedIds.has(p.entry.id));
    for (const [imei, track] of tracks) {
      const d = this.devices.get(imei);
      if (d) d.track = track;
    }
    if (committed.length > 0 && this.opts.afterCommit) await this.opts.afterCommit(committed.map((p) => p.entry.id));

    for (const d of dead) await this.deadLetter(d);
    const goneIds = new Set(gone);
    const done = [...committed.map((p) => p.raw), ...batch.filter((r) => goneIds.has(r.id))];
    if (done.length > 0) await this.acknowledge(done);
    const { metrics } = this.deps;
    const now = Date.now();
    metrics.entries.inc(committed.length);
    for (const p of committed) metrics.endToEndSeconds.observe(Math.max(0, now - p.entry.receivedAt) / 1000);
  }

  /**
   * XACK, partition by partition; counts of earlier failures of these entries (rare) are dropped
   * with it.
   */
  private async acknowledge(entries: readonly RawEntry[]): Promise<void> {
    let failuresLeft = false;
    for (const [stream, ids] of byStream(entries)) {
      const { failures } = this.partition({ stream });
      const res = await this.retryRedis('acknowledge', () =>
        acknowledge(this.deps.redis, stream, failures, ids, this.failuresMayExist),
      );
      if (res.kind === 'group_missing') {
        // The group was lost with Redis' data: the rows are committed; the replay is harmless.
        this.deps.logger.warn({ stream }, 'consumer group missing while acknowledging; skipping the XACK');
        continue;
      }
      failuresLeft ||= res.failuresLeft;
    }
    this.failuresMayExist = failuresLeft;
  }

  /**
   * One attempt at committing `prepared` (device ids looked up again once after a foreign-key
   * violation; outages waited out here): committed, or refused as data. An entry whose device is
   * gone is refused without asking the database.
   */
  private async write(prepared: readonly Prepared[]): Promise<WriteAttempt> {
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      const ids = new Map<string, DeviceId>();
      for (const p of prepared) {
        const d = this.devices.get(p.entry.imei);
        if (d) ids.set(p.entry.imei, d.id);
      }
      const unknown = prepared.find((p) => !ids.has(p.entry.imei));
      if (unknown) {
        // Deleted since it was looked up (the batch is halved down to the entries of that device).
        return { kind: 'rejected', cause: 'unknown_device', error: `unknown device IMEI ${unknown.entry.imei}` };
      }
      const rows = prepared.flatMap((p) => p.rows);
      const started = performance.now();
      try {
        const res = await this.writer.write(
          rows,
          latestPerDevice(rows),
          seenPerDevice(prepared.map((p) => p.entry)),
          ids,
        );
        this.recovered();
        const { metrics } = this.deps;
        metrics.commitSeconds.observe((performance.now() - started) / 1000);
        metrics.batches.inc();
        metrics.rowsWritten.inc(res.inserted);
        metrics.conflicts.inc(res.conflicts);
        if (res.fellBack) metrics.fallbacks.inc();
        metrics.lastCommit.set(Date.now() / 1000);
        for (const [reason, n] of countFlags(rows)) metrics.flagged.inc({ reason }, n);
        return { kind: 'committed' };
      } catch (err) {
        if (isForeignKeyViolation(err) && !refreshed) {
          // A device was deleted (maybe re-created) since it was cached: look the IMEIs up again.
          refreshed = true;
          for (const p of prepared) this.devices.delete(p.entry.imei);
          await this.resolveDevices(prepared.map((p) => p.entry.imei));
          continue;
        }
        if (classifyWriteError(err) === 'data') {
          return { kind: 'rejected', cause: 'rejected', error: `rejected by the database: ${errorMessage(err)}` };
        }
        await this.dbFailed(
          err,
          attempt,
          prepared.map((p) => p.raw),
        );
      }
    }
  }

  private async resolveDevices(imeis: string[]): Promise<void> {
    const unknown = [...new Set(imeis)].filter((i) => !this.devices.has(i));
    if (unknown.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      try {
        for (const d of await this.writer.lookupDevices(unknown)) {
          this.devices.set(d.imei, { id: d.id, track: emptyTrack(d.lastFix) });
        }
        this.recovered();
        return;
      } catch (err) {
        await this.dbFailed(err, attempt, []);
      }
    }
  }

  private recovered(): void {
    if (this.dbFailing) this.deps.logger.info('database writes succeed again');
    this.dbFailing = false;
    this.deps.metrics.postgresUp.set(1);
  }

  /**
   * The database is unavailable: back off, keep the entries in hand ours (XCLAIM JUSTID resets
   * their idle time without counting a delivery, so other consumers do not claim them meanwhile),
   * and try again — unless stopping, when they are left pending for whoever runs next.
   */
  private async dbFailed(err: unknown, attempt: number, held: readonly RawEntry[]): Promise<void> {
    const { logger, metrics } = this.deps;
    metrics.postgresUp.set(0);
    metrics.retries.inc({ dependency: 'postgres' });
    if (!this.dbFailing || attempt % 20 === 0) {
      logger.error({ err: errorMessage(err), attempt }, 'database write failed; retrying without acknowledging');
    }
    this.dbFailing = true;
    if (this.stopping) throw new Stopped();
    await sleep(backoffMs(attempt), this.abort.signal);
    if (this.stopping) throw new Stopped();
    for (const [stream, ids] of byStream(held)) {
      await this.deps.redis.xclaim(stream, GROUPS.processors, this.opts.consumer, 0, ...ids, 'JUSTID').catch(() => {});
    }
  }

  private async deadLetter(d: DeadEntry): Promise<void> {
    const { raw } = d;
    const fields = raw.fields ?? [];
    const field = (name: keyof TelemetryEntry) => TelemetryMessage.field(fields, name)?.toString();
    // The entry's own fields where they are valid (an invalid entry's may not be).
    const kept = (name: 'codec' | 'records' | 'receivedAt' | 'instance') => {
      const v = field(name);
      return DeadLetter.shape[name].safeParse(v).success ? v : undefined;
    };
    const letter = {
      sourceId: raw.id,
      imei: field('imei') ?? '',
      transport: field('transport') ?? '',
      error: d.error,
      cause: d.cause,
      deliveries: raw.deliveries,
      failedAt: Date.now(),
      frame: (TelemetryMessage.field(fields, 'frame') as Buffer | undefined) ?? Buffer.alloc(0),
      codec: kept('codec'),
      records: kept('records'),
      receivedAt: kept('receivedAt'),
      instance: kept('instance'),
    };
    const { deadMaxLen } = this.opts;
    // The partition's own dead-letter stream and failure counts share its hash tag: one MULTI.
    const { dead, failures } = this.partition(raw);
    await this.retryRedis('dead-letter', async () => {
      const res = await this.deps.redis
        .multi()
        // Exact MAXLEN: the cap is a promise about memory, and dead letters are rare enough.
        .xadd(dead, 'MAXLEN', deadMaxLen, '*', ...encodeDeadLetter(letter))
        .xack(raw.stream, GROUPS.processors, raw.id)
        .hdel(failures, raw.id)
        .exec();
      const failed = res?.find(([e]) => e);
      if (!res || failed) throw failed?.[0] ?? new Error('MULTI aborted');
    });
    this.deps.metrics.deadLetters.inc({ cause: d.cause });
    this.deps.logger.warn(
      { id: raw.id, imei: letter.imei, error: d.error, cause: d.cause },
      'entry moved to the dead-letter stream',
    );
  }

  private async retryRedis<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const v = await fn();
        this.deps.metrics.redisUp.set(1);
        return v;
      } catch (err) {
        this.deps.metrics.redisUp.set(0);
        this.deps.metrics.retries.inc({ dependency: 'redis' });
        if (attempt % 20 === 0) this.deps.logger.warn({ err: errorMessage(err), attempt }, `${what} failed; retrying`);
        if (this.stopping && attempt > 2) throw new Stopped();
        await sleep(backoffMs(attempt), this.abort.signal);
      }
    }
  }
}
