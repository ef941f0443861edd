/**
 * Helpers for the alerting tests: a webhook receiver that checks signatures and remembers delivery
 * ids, the daemon configuration for a test database, rows a test needs (devices, rules, fences),
 * and the real producer of events (processor + history worker) fed with drives.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Knex } from 'knex';
import type { TestRedis } from '../../../test/support/index.js';
import { alertingExtensions } from '../../src/alerts/history-extensions.js';
import { type Config, loadConfig } from '../../src/config.js';
import { type AlertPayload, WEBHOOK_HEADERS } from '../../src/contract/alerts.js';
import { GROUPS } from '../../src/contract/keys.js';
import { runDerive } from '../../src/history/main.js';
import { runProcess } from '../../src/processor/main.js';
import { processorEnv, record, silentLogger, telemetryFields, waitFor } from '../processor/support.js';

export interface ReceivedWebhook {
  delivery: string;
  attempt: number;
  signatureOk: boolean;
  body: AlertPayload;
}

export interface WebhookReceiver {
  url: string;
  port: number;
  /** Every request, in arrival order (repeats included). */
  requests: ReceivedWebhook[];
  /** Distinct deliveries (what a receiver deduplicating by X-Fleet-Delivery acts on). */
  unique(): ReceivedWebhook[];
  /** While set, requests are answered only when `release()` is called. */
  hold: boolean;
  release(): void;
  /** Requests currently waiting for an answer. */
  open(): number;
  close(): Promise<void>;
  /** Starts listening again on the same port after close(). */
  listen(): Promise<void>;
}

/** A receiver checking `X-Fleet-Signature` with `secret`; answers 200 (or holds while `hold`). */
export async function webhookReceiver(secret: string, port = 0): Promise<WebhookReceiver> {
  const requests: ReceivedWebhook[] = [];
  const held: ServerResponse[] = [];
  let server: Server;
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`);
      const given = Buffer.from(String(req.headers[WEBHOOK_HEADERS.signature] ?? ''));
      requests.push({
        delivery: String(req.headers[WEBHOOK_HEADERS.delivery]),
        attempt: Number(req.headers[WEBHOOK_HEADERS.attempt]),
        signatureOk: given.length === expected.length && timingSafeEqual(given, expected),
        body: JSON.parse(raw.toString('utf8')) as AlertPayload,
      });
      if (receiver.hold) held.push(res);
      else res.writeHead(200).end('ok');
    });
  };
  const listen = (p: number) =>
    new Promise<number>((resolve) => {
      server = createServer(handler);
      server.listen(p, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  const bound = await listen(port);
  const receiver: WebhookReceiver = {
    url: `http://127.0.0.1:${bound}/hook`,
    port: bound,
    requests,
    unique: () => [...new Map(requests.map((r) => [r.delivery, r])).values()],
    hold: false,
    release() {
      for (const res of held.splice(0)) if (!res.destroyed) res.writeHead(200).end('ok');
    },
    open: () => held.filter((r) => !r.destroyed && !r.writableEnded).length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held.splice(0)) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    listen: async () => {
      await listen(bound);
    },
  };
  return receiver;
}

/** A free TCP port with nothing listening on it (for a receiver that is down). */
export async function unusedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function addDevice(knex: Knex, imei: string, name: string): Promise<number> {
  const [row] = await knex('devices').insert({ imei, name, enabled: true }).returning('id');
  return Number((row as { id: number }).id);
}

export async function addRule(knex: Knex, rule: Record<string, unknown>): Promise<number> {
  const json = (v: unknown) => (v === undefined ? null : JSON.stringify(v));
  const [row] = await knex('alert_rules')
    .insert({
      enabled: true,
      min_duration_s: 0,
      cooldown_s: 0,
      notify_stale: false,
      ...rule,
      devices: json(rule.devices),
      schedule: json(rule.schedule),
      notify_users: json(rule.notify_users),
      notify_roles: json(rule.notify_roles),
      email_to: json(rule.email_to),
    })
    .returning('id');
  return Number((row as { id: number }).id);
}

/** Alerting settings for a test database: fast retries, short timeouts. */
export function alertsEnv(
  connection: { host: string; port: number; user: string; password?: string; database: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    INSTANCE_ID: `alerts-${Math.random().toString(36).slice(2, 10)}`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DB_HOST: connection.host,
    DB_PORT: String(connection.port),
    DB_DATABASE: connection.database,
    DB_USER: connection.user,
    DB_PASSWORD: connection.password ?? '',
    ALERT_WEBHOOK_TIMEOUT_MS: '1000',
    ALERT_RETRY_BASE_MS: '100',
    ALERT_RETRY_MAX_MS: '400',
    ALERT_POLL_MS: '100',
    ALERT_SWEEP_INTERVAL_MS: '60000',
    // Rules a test just created apply to the next derivation.
    ALERT_RULES_TTL_MS: '0',
    ...extra,
  };
}

/** A rectangular geofence (lon/lat corners), active. */
export async function addFence(
  knex: Knex,
  name: string,
  [west, south, east, north]: [number, number, number, number],
  speedLimit: number | null = null,
): Promise<number> {
  const res = await knex.raw<{ rows: Array<{ id: number }> }>(
    `INSERT INTO geofences (name, area, speed_limit, active)
     VALUES (?, ST_MakeEnvelope(?, ?, ?, ?, 4326), ?, true) RETURNING id`,
    [name, west, south, east, north, speedLimit],
  );
  return Number(res.rows[0]!.id);
}

export interface Drive {
  /** Fix time, epoch ms. */
  time: number;
  lon: number;
  lat: number;
  speed: number;
  /** false: parked (IO 240 movement and IO 239 ignition off). Default true. */
  moving?: boolean;
  /** Satellites in use; 0 = no fix. Default 11. */
  satellites?: number;
}

/**
 * Fixes every `stepS` seconds at one latitude, one per entry of `lons` (a drive east or west
 * through fences); `speeds` per fix (default 40 km/h), 0 = parked.
 */
export function driveAlong(
  lons: readonly number[],
  lat: number,
  start: number,
  speeds: readonly number[] = [],
  stepS = 10,
): Drive[] {
  return lons.map((lon, i) => {
    const speed = speeds[i] ?? 40;
    return { time: start + i * stepS * 1000, lon, lat, speed, moving: speed > 0 };
  });
}

/**
 * The real producer of alerts, in this process: the processor (telemetry stream → positions and
 * history marks) and the history worker with alerting's derivers and hooks, as `daemon derive` runs
 * them. `send` puts AVL records on the stream as ingestion does.
 */
export interface Pipeline {
  config: Config;
  env: Record<string, string>;
  send(imei: string, drive: readonly Drive[], receivedAt?: number): Promise<void>;
  /** Resolves once the processor consumed everything sent and the worker derived every mark. */
  settled(knex: Knex): Promise<void>;
  stop(): Promise<void>;
}

export async function startPipeline(
  connection: Parameters<typeof alertsEnv>[0],
  redis: TestRedis,
  extra: Record<string, string> = {},
): Promise<Pipeline> {
  const env = {
    ...processorEnv(connection, redis.url, redis.prefix),
    ...alertsEnv(connection),
    HISTORY_METRICS_PORT: '0',
    HISTORY_POLL_MS: '50',
    ...extra,
  };
  const config = loadConfig(env);
  const processor = await runProcess(config, silentLogger);
  const worker = await runDerive(config, silentLogger, { extensions: alertingExtensions(config) });
  return {
    config,
    env,
    async send(imei, drive, receivedAt) {
      const records = drive.map((d) => {
        const on = d.moving === false ? 0 : 1;
        return record({
          timestamp: d.time,
          longitude: d.lon,
          latitude: d.lat,
          speed: d.speed,
          satellites: d.satellites ?? 11,
          io: { ids: [239, 240, 21, 66, 16], values: [on, on, 4, 24079, 123456] },
        });
      });
      await redis.redis.xadd(
        redis.keys.telemetryAvl,
        '*',
        ...telemetryFields(imei, records, { receivedAt: receivedAt ?? Date.now() }),
      );
    },
    async settled(knex) {
      await waitFor('processed and derived', async () => {
        const groups = (await redis.redis.xinfo('GROUPS', redis.keys.telemetryAvl)) as unknown[][];
        const group = groups
          .map((g) => Object.fromEntries(g.flatMap((v, i) => (i % 2 === 0 ? [[String(v), g[i + 1]]] : []))))
          .find((g) => g.name === GROUPS.processors);
        if (!group || Number(group.pending) !== 0 || Number(group.lag) !== 0) return false;
        const marks = await knex('history_dirty').count('* as n').first();
        return Number(marks?.n) === 0;
      });
    },
    async stop() {
      await worker.stop();
      await processor.stop();
    },
  };
}
