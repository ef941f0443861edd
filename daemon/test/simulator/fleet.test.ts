import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/index.js';
import { decodeTelemetryEntry } from '../../src/contract/index.js';
import { knexDeviceLookup } from '../../src/ingestion/devices.js';
import { decodeUdpDatagram } from '../../src/protocol/index.js';
import { type FleetOptions, runFleet } from '../../src/simulator/fleet.js';
import { simulatedImei } from '../../src/simulator/imei.js';
import { registerDevices } from '../../src/simulator/register.js';
import { type Harness, startHarness } from './harness.js';

const key = (r: { imei: string; timestamp: number }) => `${r.imei}@${r.timestamp}`;

describe('fleet runner against the real ingestion server', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ allowAll: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  /** A fleet against the harness's server, keeping every acknowledged record. */
  const run = (opts: Omit<FleetOptions, 'host' | 'port' | 'collectAcked'>) =>
    runFleet({ host: '127.0.0.1', port: h.ingestion.tcpPort, collectAcked: true, ...opts });

  it('reports exactly the acknowledged records, and they are exactly what reached the stream', async () => {
    const summary = await run({ devices: 20, rate: 4, records: 10, duration: 1, seed: 11 });
    const acked = summary.acked!;
    expect(summary.connected).toBe(20);
    expect(summary.unacked).toBe(0);
    expect(summary.counters.recordsAcked).toBe(acked.length);
    expect(summary.counters.recordsSent).toBe(acked.length);
    expect(acked.length).toBeGreaterThanOrEqual(20 * 10);
    expect(new Set(acked.map(key)).size).toBe(acked.length); // fix times unique per device
    expect(new Set(acked.map((r) => r.imei))).toEqual(
      new Set(Array.from({ length: 20 }, (_, i) => simulatedImei(11, i))),
    );
    const stored = new Set((await h.streamRecords()).map(key));
    expect(stored).toEqual(new Set(acked.map(key)));
    expect(summary.ackLatencyMs.count).toBe(summary.counters.framesAcked);
  });

  it('splits a fleet across worker processes and merges their summaries', async () => {
    const summary = await run({ devices: 6, processes: 2, rate: 0, records: 5, duration: 0.3, seed: 12 });
    expect(summary.processes).toBe(2);
    expect(summary.connected).toBe(6);
    expect(new Set(summary.acked!.map((r) => r.imei))).toEqual(
      new Set(Array.from({ length: 6 }, (_, i) => simulatedImei(12, i))),
    );
    expect(summary.counters.recordsAcked).toBe(summary.acked!.length);
    const stored = new Set((await h.streamRecords()).map(key));
    for (const r of summary.acked!) expect(stored.has(key(r))).toBe(true);
  });

  it('is reproducible with a seed: same IMEIs and same first positions', async () => {
    const firstFixes = async () => {
      const s = await runFleet({
        host: '127.0.0.1',
        port: h.ingestion.udpPort!,
        transport: 'udp',
        devices: 3,
        rate: 10,
        records: 1,
        duration: 0.3,
        seed: 13,
        collectAcked: true,
      });
      // The first acknowledged record of each device in this run.
      const first = new Map<string, number>();
      for (const r of s.acked!) first.set(r.imei, Math.min(first.get(r.imei) ?? r.timestamp, r.timestamp));
      return first;
    };
    const a = await firstFixes();
    const b = await firstFixes();
    expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
    expect(a.size).toBe(3);
    const positions = new Map<string, string>();
    const entries = await h.redis.xrangeBuffer(`${h.prefix}telemetry:avl`, '-', '+');
    for (const [, f] of entries) {
      const e = decodeTelemetryEntry(f);
      if (e.transport !== 'udp') continue;
      for (const r of decodeUdpDatagram(e.frame).packet.records)
        positions.set(key({ imei: e.imei, timestamp: r.timestamp }), `${r.latitude},${r.longitude}`);
    }
    for (const [imei, ts] of a) {
      const p1 = positions.get(key({ imei, timestamp: ts }));
      expect(p1).toBeDefined();
      expect(positions.get(key({ imei, timestamp: b.get(imei)! }))).toBe(p1);
    }
  });

  it('runs from the command line and prints a summary', async () => {
    const run = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        'daemon/src/cli.ts',
        'simulate',
        ...['--devices', '3', '--rate', '5', '--records', '2', '--codec', '8', '--duration', '0.5'],
        ...['--port', String(h.ingestion.tcpPort), '--seed', '14', '--json'],
      ],
      { cwd: new URL('../../../', import.meta.url), timeout: 30_000 },
    );
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ devices: 3, connected: 3, codec: 8, unacked: 0 });
    expect(summary.counters.recordsAcked).toBeGreaterThanOrEqual(6);
    expect(summary.counters.recordsAcked).toBe(summary.counters.recordsSent);
  });

  it('rejects bad arguments with a usage message and exit code 2', async () => {
    const err = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'daemon/src/cli.ts', 'simulate', '--codec', '9'],
      { cwd: new URL('../../../', import.meta.url), timeout: 30_000 },
    ).catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 2 });
    expect((err as { stderr: string }).stderr).toMatch(/--codec must be 8, 8E or 16/);
  });
});

describe('--register', () => {
  let db: TestDatabase;
  let h: Harness;
  beforeAll(async () => {
    db = await createTestDatabase();
    h = await startHarness({ lookup: knexDeviceLookup(db.knex, { unknownDevices: 'refuse' }) });
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  it('creates the IMEIs as enabled devices once, and ingestion then accepts exactly those', async () => {
    expect(await registerDevices(db.knex, { devices: 4, seed: 21 })).toBe(4);
    expect(await registerDevices(db.knex, { devices: 4, seed: 21 })).toBe(0);
    const rows = await db.knex('devices').select('imei', 'enabled', 'model').orderBy('imei');
    expect(rows.map((r) => r.imei)).toEqual(Array.from({ length: 4 }, (_, i) => simulatedImei(21, i)).sort());
    expect(rows.every((r) => r.enabled === true && r.model === 'FMB920')).toBe(true);

    // Five devices, one of them never registered: it is refused and backs off, the others deliver.
    const summary = await runFleet({
      host: '127.0.0.1',
      port: h.ingestion.tcpPort,
      devices: 5,
      rate: 2,
      records: 3,
      duration: 0.5,
      seed: 21,
      collectAcked: true,
      drainMs: 2000,
    });
    expect(summary.connected).toBe(4);
    expect(summary.counters.refusals).toBeGreaterThanOrEqual(1);
    expect(new Set(summary.acked!.map((r) => r.imei)).size).toBe(4);
    expect(summary.acked!.some((r) => r.imei === simulatedImei(21, 4))).toBe(false);
  });
});
