/**
 * Two ingestion instances behind a real HAProxy (TCP mode, round robin, `send-proxy-v2`, health
 * checks with a PROXY LOCAL header), as docker-compose.yml runs them: ingestion sees each device's
 * own address through the balancer, a command reaches its device on whichever instance holds it,
 * and stopping one instance moves its devices to the other on reconnect with every record they saw
 * acknowledged in the stream.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeCommandResponse,
  decodeRegistryValue,
  decodeTelemetryEntry,
  defineContractScripts,
  encodeOutboundCommand,
} from '../../src/contract/index.js';
import type { Ingestion } from '../../src/ingestion/server.js';
import { decodeAvlFrame } from '../../src/protocol/index.js';
import { createSimulatedDevice, runFleet } from '../../src/simulator/fleet.js';
import { simulatedImei } from '../../src/simulator/imei.js';
import { registerDevices } from '../../src/simulator/register.js';
import {
  createTestDatabase,
  createTestRedis,
  eventually,
  freePort,
  Opened,
  REDIS_URL,
  startTestIngestion,
} from './support.js';

const SEED = 1313;
const FENCED = '356307042441301';
const HAPROXY = process.env.HAPROXY_PATH || '/usr/sbin/haproxy';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Awaited<ReturnType<typeof createTestRedis>>;
let scripts: ReturnType<typeof defineContractScripts<Redis>>;
const opened = new Opened();
const ingestions = new Map<string, Ingestion>();
let haproxy: ChildProcess;
let lbPort: number;

async function startHaproxy(backends: number[]): Promise<void> {
  lbPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fleet-haproxy-'));
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    [
      'global',
      '  maxconn 4096',
      'defaults',
      '  mode tcp',
      '  timeout connect 2s',
      '  timeout client 1h',
      '  timeout server 1h',
      '  retries 3',
      '  option redispatch',
      'frontend devices',
      `  bind 127.0.0.1:${lbPort}`,
      '  default_backend ingestion',
      'backend ingestion',
      '  balance roundrobin',
      ...backends.map(
        (port, i) => `  server ing${i} 127.0.0.1:${port} send-proxy-v2 check inter 300 fall 1 rise 1 check-send-proxy`,
      ),
      '',
    ].join('\n'),
  );
  haproxy = spawn(HAPROXY, ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  haproxy.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  await eventually(
    () =>
      new Promise<boolean>((resolve) => {
        if (haproxy.exitCode !== null) throw new Error(`haproxy exited: ${stderr}`);
        const s = connect(lbPort, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    'haproxy listening',
  );
}

/** Ingestion instances that trust the balancer on 127.0.0.1, and a balancer in front of them. */
async function startBehindBalancer(ids: string[]): Promise<void> {
  for (const id of ids) {
    ingestions.set(
      id,
      await startTestIngestion(db.knex, {
        instanceId: id,
        redisUrl: REDIS_URL,
        redisPrefix: r.prefix,
        proxyFrom: '127.0.0.1/32',
        commandTimeoutMs: 5000,
      }),
    );
  }
  await startHaproxy([...ingestions.values()].map((i) => i.tcpPort));
}

async function holders(imeis: string[]): Promise<(string | null)[]> {
  const values = await r.redis.hmget(r.keys.connectionsRegistry, ...imeis);
  return values.map((v) => (v === null ? null : decodeRegistryValue(v).instance));
}

/** Sends `text` to the device the way the extension does (registry → heartbeat → XADD, one script). */
async function dispatch(commandId: string, imei: string, text: string): Promise<string | null> {
  const fields = encodeOutboundCommand({ commandId, imei, text, expiresAt: Date.now() + 60_000 });
  const res = await scripts.fleetDispatchCommand(
    r.keys.connectionsRegistry,
    r.keys.heartbeat(''),
    r.keys.commandsOutbound(''),
    imei,
    '1000',
    ...fields,
  );
  return res ? String(res[0]) : null;
}

async function answered(commandId: string) {
  return eventually(async () => {
    const all = (await r.redis.xrange(r.keys.commandsResponses, '-', '+')).map(([, f]) => decodeCommandResponse(f));
    return all.find((x) => x.commandId === commandId && x.outcome === 'answered');
  }, `command ${commandId} answered`);
}

beforeAll(async () => {
  db = await createTestDatabase();
  r = await createTestRedis();
  scripts = defineContractScripts(new Redis(REDIS_URL, { lazyConnect: false }));
  await registerDevices(db.knex, { devices: 40, seed: SEED });
  await db.knex('devices').insert({ imei: FENCED, name: 'fenced', enabled: true, allowed_networks: '127.0.0.2/32' });
  await startBehindBalancer(['lb-a', 'lb-b']);
});

afterAll(async () => {
  haproxy?.kill('SIGKILL');
  await opened.close();
  for (const i of ingestions.values()) await i.stop();
  scripts?.disconnect();
  await r?.cleanup();
  await db?.drop();
});

describe('ingestion behind a TCP load balancer', () => {
  it("judges a device by its own address (the PROXY header), not the balancer's", async () => {
    const inside = await opened.device(lbPort, { localAddress: '127.0.0.2' });
    expect(await inside.login(FENCED)).toBe(1);
    inside.close();
    const outside = await opened.device(lbPort, { localAddress: '127.0.0.1' });
    expect(await outside.login(FENCED)).toBe(0);
  });

  it('delivers a command on whichever instance holds the device, before and after one instance stops', async () => {
    const imeis = Array.from({ length: 6 }, (_, i) => simulatedImei(SEED, 30 + i));
    const devices = imeis.map((imei) =>
      createSimulatedDevice({ imei, host: '127.0.0.1', port: lbPort, seed: SEED, reconnectDelayMs: 100 }),
    );
    try {
      for (const d of devices) expect(await d.connect()).toBe(true);
      const spread = await eventually(async () => {
        const h = await holders(imeis);
        return h.every((x) => x !== null) ? h : null;
      }, 'every device registered');
      expect(new Set(spread)).toEqual(new Set(['lb-a', 'lb-b']));
      for (const [i, imei] of imeis.entries()) expect(await dispatch(`before-${i}`, imei, 'getver')).toBe(spread[i]);
      for (const i of imeis.keys()) expect((await answered(`before-${i}`)).response).toMatch(/^Ver:/);

      await ingestions.get('lb-a')?.stop();
      ingestions.delete('lb-a');
      await eventually(async () => {
        const h = await holders(imeis);
        return h.every((x) => x === 'lb-b') ? h : null;
      }, 'every device reconnected to lb-b');
      for (const [i, imei] of imeis.entries()) expect(await dispatch(`after-${i}`, imei, 'getver')).toBe('lb-b');
      for (const i of imeis.keys()) expect((await answered(`after-${i}`)).response).toMatch(/^Ver:/);
    } finally {
      for (const d of devices) await d.close();
    }
  });

  it('loses no acknowledged record while an instance stops under load', async () => {
    // a fresh pair behind a fresh balancer: the previous test stopped one instance
    haproxy.kill('SIGKILL');
    for (const i of ingestions.values()) await i.stop();
    ingestions.clear();
    await startBehindBalancer(['lb-c', 'lb-d']);
    const before = new Set((await r.redis.xrange(r.keys.telemetryAvl, '-', '+')).map(([id]) => id));
    const fleet = runFleet({
      host: '127.0.0.1',
      port: lbPort,
      devices: 20,
      firstIndex: 0,
      rate: 2,
      records: 3,
      duration: 4,
      seed: SEED,
      collectAcked: true,
      drainMs: 10_000,
    });
    // Stop lb-c once it holds devices and frames are coming in (a fixed pause could end before any
    // device reached it on a busy machine, and then nothing would reconnect).
    await eventually(async () => {
      const held = Object.values(await r.redis.hgetall(r.keys.connectionsRegistry)).some(
        (v) => decodeRegistryValue(v).instance === 'lb-c',
      );
      return held && (await r.redis.xlen(r.keys.telemetryAvl)) > before.size;
    }, 'devices sending through lb-c');
    await ingestions.get('lb-c')?.stop();
    ingestions.delete('lb-c');
    const summary = await fleet;
    expect(summary.acked?.length).toBeGreaterThan(0);
    const stored = new Set<string>();
    const entries = (await r.redis.xrangeBuffer(r.keys.telemetryAvl, '-', '+')) as [Buffer, Buffer[]][];
    for (const [id, fields] of entries) {
      if (before.has(id.toString())) continue;
      const e = decodeTelemetryEntry(fields);
      for (const rec of decodeAvlFrame(e.frame).records) stored.add(`${e.imei}:${rec.timestamp}`);
    }
    const missing = (summary.acked ?? []).filter((a) => !stored.has(`${a.imei}:${a.timestamp}`));
    expect(missing).toEqual([]);
    expect(summary.counters.reconnects).toBeGreaterThan(0);
    expect(summary.unacked).toBe(0);
  });
});
