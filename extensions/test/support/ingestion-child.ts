/**
 * An ingestion instance in its own process, so a test can SIGKILL it (a crash: no deregister, no
 * final outcomes, the heartbeat simply stops). Prints `{"tcpPort":…}` once listening.
 *
 *   tsx ingestion-child.ts '<json options>'
 */
import knexFactory from 'knex';
import { knexDeviceLookup } from '../../../daemon/src/ingestion/devices.js';
import { startIngestion } from '../../../daemon/src/ingestion/server.js';

const o = JSON.parse(process.argv[2] ?? '{}') as {
  instanceId: string;
  redisUrl: string;
  redisPrefix: string;
  connection: Record<string, unknown>;
  heartbeatTtlSeconds: number;
  commandTimeoutMs: number;
};
const knex = knexFactory({ client: 'pg', connection: o.connection, pool: { min: 0, max: 2 } });
const ingestion = await startIngestion({
  instanceId: o.instanceId,
  redisUrl: o.redisUrl,
  redisPrefix: o.redisPrefix,
  lookup: knexDeviceLookup(knex, { unknownDevices: 'refuse' }),
  deviceCacheTtlMs: 0,
  host: '127.0.0.1',
  tcpPort: 0,
  udpPort: null,
  heartbeat: { ttlSeconds: o.heartbeatTtlSeconds, refreshMs: 500 },
  commandTimeoutMs: o.commandTimeoutMs,
});
process.stdout.write(`${JSON.stringify({ tcpPort: ingestion.tcpPort })}\n`);
