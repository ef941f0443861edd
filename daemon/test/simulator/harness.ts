/**
 * Test harness for the simulator: the real in-process ingestion server on free ports, writing to
 * the local Redis under a random key prefix (removed afterwards). By default devices are allowed by
 * a lookup function instead of a database so these tests need only Redis; the --register test
 * passes the real database lookup.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { createTestRedis } from '../../../test/support/index.js';
import { decodeTelemetryEntry } from '../../src/contract/index.js';
import type { DeviceLookup, DeviceStatus } from '../../src/ingestion/devices.js';
import { type Ingestion, startIngestion } from '../../src/ingestion/main.js';
import { decodeAvlFrame, decodeUdpDatagram } from '../../src/protocol/index.js';

export interface Harness {
  ingestion: Ingestion;
  redis: Redis;
  prefix: string;
  allowed: Set<string>;
  /** Every (imei, fix time) on the telemetry stream, in stream order (duplicates kept). */
  streamRecords(): Promise<Array<{ imei: string; timestamp: number }>>;
  close(): Promise<void>;
}

export async function startHarness(
  opts: { allowAll?: boolean; lookup?: DeviceLookup; commandTimeoutMs?: number } = {},
): Promise<Harness> {
  const testRedis = await createTestRedis();
  const { redis, prefix, keys } = testRedis;
  const allowed = new Set<string>();
  const lookup =
    opts.lookup ??
    (async (imei: string): Promise<DeviceStatus> =>
      opts.allowAll || allowed.has(imei) ? { known: true, id: imei, enabled: true } : { known: false });
  const ingestion = await startIngestion({
    instanceId: `sim-${randomBytes(3).toString('hex')}`,
    redisUrl: testRedis.url,
    redisPrefix: prefix,
    lookup,
    deviceCacheTtlMs: 0,
    host: '127.0.0.1',
    tcpPort: 0,
    udpPort: 0,
    metricsPort: null,
    commandTimeoutMs: opts.commandTimeoutMs ?? 2000,
  });
  return {
    ingestion,
    redis,
    prefix,
    allowed,
    async streamRecords() {
      const entries = await redis.xrangeBuffer(keys.telemetryAvl, '-', '+');
      const out: Array<{ imei: string; timestamp: number }> = [];
      for (const [, fields] of entries) {
        const e = decodeTelemetryEntry(fields);
        const packet = e.transport === 'udp' ? decodeUdpDatagram(e.frame).packet : decodeAvlFrame(e.frame);
        for (const r of packet.records) out.push({ imei: e.imei, timestamp: r.timestamp });
      }
      return out;
    },
    async close() {
      try {
        await ingestion.stop('test done');
      } finally {
        await testRedis.cleanup();
      }
    },
  };
}
