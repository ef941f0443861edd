/**
 * Ingestion driven by the device simulator (realistic FMB-like devices over real TCP and UDP):
 * every record a simulated device saw acknowledged is in the telemetry stream, and a command
 * reaches a simulated device and comes back answered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeCommandResponse,
  decodeTelemetryEntry,
  encodeOutboundCommand,
  GROUPS,
} from '../../src/contract/index.js';
import type { Ingestion } from '../../src/ingestion/server.js';
import { decodeAvlFrame, decodeUdpDatagram } from '../../src/protocol/index.js';
import { createSimulatedDevice, runFleet } from '../../src/simulator/fleet.js';
import { simulatedImei } from '../../src/simulator/imei.js';
import { registerDevices } from '../../src/simulator/register.js';
import { createTestDatabase, createTestRedis, eventually, REDIS_URL, startTestIngestion } from './support.js';

const SEED = 4242;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Awaited<ReturnType<typeof createTestRedis>>;
let ing: Ingestion;

beforeAll(async () => {
  db = await createTestDatabase();
  r = await createTestRedis();
  await registerDevices(db.knex, { devices: 40, seed: SEED });
  ing = await startTestIngestion(db.knex, {
    instanceId: 'sim-ingest',
    redisUrl: REDIS_URL,
    redisPrefix: r.prefix,
    udpPort: 0,
    commandTimeoutMs: 5000,
  });
});

afterAll(async () => {
  await ing?.stop();
  await r?.cleanup();
  await db?.drop();
});

/** IMEI + fix time of every record in the stream. */
async function storedRecords(): Promise<Set<string>> {
  const out = new Set<string>();
  const entries = (await r.redis.xrangeBuffer(r.keys.telemetryAvl, '-', '+')) as [Buffer, Buffer[]][];
  for (const [, fields] of entries) {
    const e = decodeTelemetryEntry(fields);
    const records = e.transport === 'udp' ? decodeUdpDatagram(e.frame).packet.records : decodeAvlFrame(e.frame).records;
    for (const rec of records) out.add(`${e.imei}:${rec.timestamp}`);
  }
  return out;
}

describe('ingestion with simulated devices', () => {
  it('stores every record the TCP and UDP fleets saw acknowledged', async () => {
    const tcp = await runFleet({
      host: '127.0.0.1',
      port: ing.tcpPort,
      devices: 20,
      rate: 2,
      records: 5,
      duration: 1.5,
      seed: SEED,
      collectAcked: true,
      drainMs: 5000,
    });
    const udp = await runFleet({
      host: '127.0.0.1',
      port: ing.udpPort as number,
      transport: 'udp',
      devices: 10,
      firstIndex: 20,
      rate: 2,
      records: 3,
      duration: 1,
      seed: SEED,
      collectAcked: true,
      drainMs: 5000,
    });
    const acked = [...(tcp.acked ?? []), ...(udp.acked ?? [])];
    expect(tcp.acked?.length).toBeGreaterThan(0);
    expect(udp.acked?.length).toBeGreaterThan(0);
    const stored = await storedRecords();
    const missing = acked.filter((a) => !stored.has(`${a.imei}:${a.timestamp}`));
    expect(missing).toEqual([]);
  });

  it('delivers a command to a simulated device and reports its answer', async () => {
    const imei = simulatedImei(SEED, 35);
    const device = createSimulatedDevice({ imei, host: '127.0.0.1', port: ing.tcpPort, seed: SEED });
    try {
      expect(await device.connect()).toBe(true);
      await eventually(async () => (await r.redis.hget(r.keys.connectionsRegistry, imei)) !== null, 'registered');
      await r.redis.xadd(
        r.keys.commandsOutbound('sim-ingest'),
        '*',
        ...encodeOutboundCommand({ commandId: 'sim-1', imei, text: 'getver', expiresAt: Date.now() + 60_000 }),
      );
      const answered = await eventually(async () => {
        const all = (await r.redis.xrange(r.keys.commandsResponses, '-', '+')).map(([, f]) => decodeCommandResponse(f));
        return all.find((x) => x.commandId === 'sim-1' && x.outcome === 'answered');
      }, 'command answered');
      expect(answered.response).toMatch(/^Ver:/);
      const [count] = (await r.redis.xpending(r.keys.commandsOutbound('sim-ingest'), GROUPS.outbound)) as [number];
      expect(count).toBe(0);
    } finally {
      await device.close();
    }
  });
});
