/**
 * Runs one ingestion instance in a child process for crash tests (SIGKILL leaves what a real
 * crash leaves). Options come as JSON in INGEST_CHILD; prints `READY <tcpPort>` when listening.
 */
import knexFactory from 'knex';
import { startTestIngestion } from './support.js';

interface ChildOptions {
  instanceId: string;
  redisUrl: string;
  prefix: string;
  db: { host: string; port: number; user: string; password: string; database: string };
  heartbeatTtlSeconds: number;
  heartbeatRefreshMs: number;
  commandTimeoutMs?: number;
  deviceCacheTtlMs?: number;
}

const o = JSON.parse(process.env.INGEST_CHILD ?? '{}') as ChildOptions;
const knex = knexFactory({ client: 'pg', connection: o.db, pool: { min: 0, max: 2 } });
const ing = await startTestIngestion(knex, {
  instanceId: o.instanceId,
  redisUrl: o.redisUrl,
  redisPrefix: o.prefix,
  heartbeat: { ttlSeconds: o.heartbeatTtlSeconds, refreshMs: o.heartbeatRefreshMs },
  ...(o.commandTimeoutMs === undefined ? {} : { commandTimeoutMs: o.commandTimeoutMs }),
  ...(o.deviceCacheTtlMs === undefined ? {} : { deviceCacheTtlMs: o.deviceCacheTtlMs }),
});
process.stdout.write(`READY ${ing.tcpPort}\n`);
