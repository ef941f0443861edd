/**
 * The stack the command tests run against: a test database, a Redis key prefix, a real Directus
 * with the built bundle and an in-process ingestion server, plus REST calls on the `commands`
 * collection. Everything started is stopped again if a later step fails.
 *
 * With `cluster`, the telemetry plane (ingestion and the extension's streams and scripts) runs on
 * that Redis Cluster, while Directus keeps the shared single Redis for its own use (it cannot use
 * a cluster).
 */
import type { Ingestion, IngestionOptions } from '../../../daemon/src/ingestion/server.js';
import { startTestIngestion } from '../../../daemon/test/ingestion/support.js';
import {
  createTestDatabase,
  createTestRedis,
  type StartDirectusOptions,
  startDirectus,
  type TestDatabase,
  type TestDirectus,
  type TestRedis,
  type TestRedisCluster,
  waitFor,
} from '../../../test/support/index.js';
import { type ApiResult, restClient } from './commands-harness.js';

export interface CommandStack {
  db: TestDatabase;
  redis: TestRedis;
  directus: TestDirectus;
  ingestion: Ingestion;
  api: ReturnType<typeof restClient>;
  /** The admin's token. */
  admin: string;
  /** A command as the admin reads it. */
  read<C>(id: number): Promise<C>;
  create<C>(token: string, body: Record<string, unknown>): Promise<ApiResult<C>>;
  /** Waits until command `id` has `status` and returns it. */
  untilStatus<C extends { status: string }>(id: number, status: string, timeoutMs?: number): Promise<C>;
  stop(): Promise<void>;
}

export interface CommandStackOptions {
  directus: Omit<StartDirectusOptions, 'database' | 'redisPrefix'>;
  ingestion: Pick<IngestionOptions, 'instanceId'> & Partial<IngestionOptions>;
  cluster?: TestRedisCluster;
}

export async function startCommandStack(o: CommandStackOptions): Promise<CommandStack> {
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  // The stack owns the cluster it was given: stopped last.
  if (o.cluster) stops.push(() => o.cluster!.stop());
  try {
    const db = await createTestDatabase();
    stops.push(() => db.drop());
    const redis = await createTestRedis({ cluster: o.cluster });
    stops.push(() => redis.cleanup());
    const directus = await startDirectus({
      ...o.directus,
      env: { ...redis.env, ...o.directus.env },
      database: db,
      redisPrefix: redis.prefix,
    });
    stops.push(() => directus.stop());
    const ingestion = await startTestIngestion(db.knex, {
      redisUrl: redis.url,
      redisTarget: redis.target,
      keyLayout: redis.layout,
      redisPrefix: redis.prefix,
      ...o.ingestion,
    });
    stops.push(() => ingestion.stop());
    const api = restClient(directus.url);
    const admin = directus.adminToken;
    const read = async <C>(id: number) => (await api<C>(admin, 'GET', `/items/commands/${id}`)).data;
    return {
      db,
      redis,
      directus,
      ingestion,
      api,
      admin,
      read,
      create: (token, body) => api(token, 'POST', '/items/commands', body),
      untilStatus: <C extends { status: string }>(id: number, status: string, timeoutMs = 30_000) =>
        waitFor(
          `command ${id} to become ${status}`,
          async () => {
            const c = await read<C>(id);
            return c.status === status ? c : undefined;
          },
          timeoutMs,
        ),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
