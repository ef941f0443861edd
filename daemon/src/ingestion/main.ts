/** `daemon ingest`: the ingestion role from the process configuration. */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { type Config, redisTargetOf } from '../config.js';
import { keyLayoutFromEnv } from '../contract/index.js';
import { connectDatabase } from '../db.js';
import { knexDeviceLookup } from './devices.js';
import { startIngestion } from './server.js';
import { knexTakeoverRecorder } from './takeover.js';

export { type Ingestion, type IngestionOptions, startIngestion } from './server.js';

export async function runIngest(config: Config, logger: Logger): Promise<{ stop(reason?: string): Promise<void> }> {
  const knex = connectDatabase(config, { min: 0, max: 4 });
  try {
    const ingestion = await startIngestion({
      instanceId: config.INSTANCE_ID,
      redisUrl: config.REDIS,
      redisTarget: redisTargetOf(config),
      redisPrefix: config.FLEET_REDIS_PREFIX,
      keyLayout: keyLayoutFromEnv(config),
      waitReplicas: config.REDIS_WAIT_REPLICAS,
      lookup: knexDeviceLookup(knex, { unknownDevices: config.UNKNOWN_DEVICES }),
      recordTakeover: knexTakeoverRecorder(knex),
      deviceCacheTtlMs: config.DEVICE_CACHE_TTL_MS,
      host: config.INGEST_HOST,
      tcpPort: config.INGEST_PORT,
      udpPort: config.INGEST_UDP ? config.INGEST_PORT : null,
      tls:
        config.INGEST_TLS_PORT === undefined
          ? null
          : {
              port: config.INGEST_TLS_PORT,
              cert: readFileSync(config.INGEST_TLS_CERT as string),
              key: readFileSync(config.INGEST_TLS_KEY as string),
            },
      proxyFrom: config.INGEST_PROXY_FROM || null,
      metricsHost: config.METRICS_HOST,
      metricsPort: config.INGEST_METRICS_PORT,
      limits: {
        maxFrameBytes: config.MAX_FRAME_BYTES,
        handshakeTimeoutMs: config.HANDSHAKE_TIMEOUT_MS,
        frameTimeoutMs: config.FRAME_TIMEOUT_MS,
        idleTimeoutMs: config.IDLE_TIMEOUT_MS,
        maxConnections: config.MAX_CONNECTIONS,
        maxConnectionsPerIp: config.MAX_CONNECTIONS_PER_IP,
        maxBufferedBytes: config.MAX_BUFFERED_BYTES,
      },
      commandTimeoutMs: config.COMMAND_TIMEOUT_MS,
      logger,
    });
    return {
      async stop(reason) {
        try {
          await ingestion.stop(reason);
        } finally {
          await knex.destroy();
        }
      },
    };
  } catch (err) {
    await knex.destroy();
    throw err;
  }
}
