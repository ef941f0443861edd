/**
 * Device connection state (`devices.online`, `instance_id`, `last_seen_at`) from
 * `connections:events`, consumed in group `processors`.
 *
 * Events are treated as "something changed for this IMEI" rather than applied blindly: the state
 * written is the registry's current answer (the Lua scripts keep `connections:registry` exact),
 * checked against the holding instance's heartbeat. So events handled out of order (several
 * processors, a reconnect to another instance racing the old socket's disconnect) still end in the
 * true state. A periodic sweep shows devices offline whose instance's heartbeat has expired (the
 * instance died without sending disconnects).
 */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import {
  type ConnectionEvent,
  ConnectionEventMessage,
  decodeRegistryValue,
  GROUPS,
  type RedisKeys,
  StreamReader,
} from '../contract/index.js';
import type { Logger } from '../observability/logger.js';
import { backoffMs, errorMessage } from './errors.js';
import type { ProcessorMetrics } from './metrics.js';

export interface DeviceStateOptions {
  keys: RedisKeys;
  consumer: string;
  batchSize: number;
  blockMs: number;
  /** How often devices of dead instances are looked for. */
  sweepIntervalMs: number;
}

export interface DeviceStateDeps {
  reader: Redis;
  redis: Redis;
  pool: pg.Pool;
  logger: Logger;
  metrics: ProcessorMetrics;
}

export interface DeviceStateChange {
  imei: string;
  online: boolean;
  instance: string | null;
  /** Latest connect time among the events (epoch ms), if any. */
  connectedAt: number | null;
}

/** Pure: the state to write per IMEI, given the events and what the registry and heartbeats say now. */
export function deviceStateChanges(
  events: readonly ConnectionEvent[],
  registry: ReadonlyMap<string, string | null>,
  liveInstances: ReadonlySet<string>,
): DeviceStateChange[] {
  const byImei = new Map<string, DeviceStateChange>();
  for (const e of events) {
    let c = byImei.get(e.imei);
    if (!c) {
      const value = registry.get(e.imei) ?? null;
      const instance = value === null ? null : decodeRegistryValue(value).instance;
      const online = instance !== null && liveInstances.has(instance);
      c = { imei: e.imei, online, instance: online ? instance : null, connectedAt: null };
      byImei.set(e.imei, c);
    }
    if (e.type === 'connected' && (c.connectedAt === null || e.at > c.connectedAt)) c.connectedAt = e.at;
  }
  return [...byImei.values()];
}

export class DeviceStateConsumer {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private sweeping: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly opts: DeviceStateOptions,
    private readonly deps: DeviceStateDeps,
  ) {}

  start(): void {
    this.running = this.run();
    this.sweeping = setInterval(() => {
      this.sweep().catch((err: unknown) =>
        this.deps.logger.warn({ err: errorMessage(err) }, 'offline sweep failed; will retry'),
      );
    }, this.opts.sweepIntervalMs);
    this.sweeping.unref();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.sweeping) clearInterval(this.sweeping);
    await this.running;
  }

  private run(): Promise<void> {
    const { consumer, batchSize, blockMs, keys } = this.opts;
    const reader = new StreamReader(ConnectionEventMessage, {
      redis: this.deps.redis,
      reader: this.deps.reader,
      stream: keys.connectionsEvents,
      group: GROUPS.processors,
      consumer,
      count: batchSize,
      blockMs,
      signal: this.abort.signal,
    });
    return reader.run({
      ack: 'batch',
      retryDelayMs: (attempt) => backoffMs(attempt),
      handle: async ({ entries }) => {
        const events: ConnectionEvent[] = [];
        for (const e of entries) {
          if (e.ok) events.push(e.value);
          else if (e.fields) this.deps.logger.warn({ id: e.id, err: e.error }, 'ignoring an invalid connection event');
        }
        await this.apply(events);
        this.deps.metrics.deviceEvents.inc(events.length);
      },
      onError: (err, attempt) => {
        if (attempt === 1 || attempt % 20 === 0) {
          this.deps.logger.warn({ err: errorMessage(err), attempt }, 'device state update failed; retrying');
        }
      },
    });
  }

  /** Writes the current truth for the IMEIs the events name. */
  async apply(events: readonly ConnectionEvent[]): Promise<void> {
    if (events.length === 0) return;
    const { redis, keys } = { redis: this.deps.redis, keys: this.opts.keys };
    const imeis = [...new Set(events.map((e) => e.imei))];
    const values = await redis.hmget(keys.connectionsRegistry, ...imeis);
    const registry = new Map(imeis.map((imei, i) => [imei, values[i] ?? null]));
    const instances = [
      ...new Set(
        [...registry.values()].filter((v): v is string => v !== null).map((v) => decodeRegistryValue(v).instance),
      ),
    ];
    const live = new Set<string>();
    if (instances.length > 0) {
      const pipe = redis.pipeline();
      for (const i of instances) pipe.exists(keys.heartbeat(i));
      const res = (await pipe.exec()) ?? [];
      instances.forEach((inst, i) => {
        if (res[i]?.[1] === 1) live.add(inst);
      });
    }
    const changes = deviceStateChanges(events, registry, live);
    await this.deps.pool.query(
      `UPDATE devices AS d SET
         online = v.online,
         instance_id = v.instance,
         last_seen_at = CASE WHEN v.connected_ms IS NULL THEN d.last_seen_at
           ELSE GREATEST(d.last_seen_at, 'epoch'::timestamptz + v.connected_ms * interval '1 millisecond') END
       FROM unnest($1::text[], $2::bool[], $3::text[], $4::bigint[]) AS v(imei, online, instance, connected_ms)
       WHERE d.imei = v.imei`,
      [
        changes.map((c) => c.imei),
        changes.map((c) => c.online),
        changes.map((c) => c.instance),
        changes.map((c) => c.connectedAt),
      ],
    );
  }

  /** Shows offline the devices held by instances whose heartbeat has expired. */
  async sweep(): Promise<number> {
    const res = await this.deps.pool.query<{ instance_id: string }>(
      'SELECT DISTINCT instance_id FROM devices WHERE online AND instance_id IS NOT NULL',
    );
    const instances = res.rows.map((r) => r.instance_id);
    if (instances.length === 0) return 0;
    const pipe = this.deps.redis.pipeline();
    for (const i of instances) pipe.exists(this.opts.keys.heartbeat(i));
    const alive = (await pipe.exec()) ?? [];
    const dead = instances.filter((_, i) => alive[i]?.[1] !== 1);
    if (dead.length === 0) return 0;
    const upd = await this.deps.pool.query(
      'UPDATE devices SET online = false, instance_id = NULL WHERE online AND instance_id = ANY($1::text[])',
      [dead],
    );
    const n = upd.rowCount ?? 0;
    this.deps.metrics.devicesMarkedOffline.inc(n);
    if (n > 0) this.deps.logger.info({ instances: dead, devices: n }, 'devices of expired instances shown offline');
    return n;
  }
}
