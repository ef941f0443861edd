/**
 * Runs one ingestion instance in a child process for crash tests (SIGKILL leaves what a real
 * crash leaves). Options come as JSON in INGEST_CHILD; prints `READY <tcpPort>` when listening.
 */
import knexFactory from 'knex';
import { knexDeviceLookup } from '../../src/ingestion/devices.js';
import { startIngestion } from '../../src/ingestion/server.js';

interface ChildOptions {
  instanceId: string;
  redisUrl: string;
  prefix: string;
  db: { host: string; port: number; user: string; password: string; database: string };
  heartbeatTtlSeconds: number;
  heartbeatRefreshMs: number;
}

const o = JSON.parse(process.env.INGEST_CHILD ?? '{}') as ChildOptions;
const knex = knexFactory({ client: 'pg', connection: o.db, pool: { min: 0, max: 2 } });
const ing = await startIngestion({
  instanceId: o.instanceId,
  redisUrl: o.redisUrl,
  redisPrefix: o.prefix,
  lookup: knexDeviceLookup(knex, { unknownDevices: 'refuse' }),
  host: '127.0.0.1',
  tcpPort: 0,
  udpPort: null,
  heartbeat: { ttlSeconds: o.heartbeatTtlSeconds, refreshMs: o.heartbeatRefreshMs },
});
process.stdout.write(`READY ${ing.tcpPort}\n`);
