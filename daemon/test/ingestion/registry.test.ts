/**
 * The connection registry across instances: compare-and-delete under reconnect races, heartbeat
 * expiry after a crash (a real SIGKILLed process), and start-up reaping of entries left behind.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  decodeConnectionEvent,
  decodeRegistryValue,
  defineContractScripts,
  deregisterConnection,
  encodeRegistryValue,
} from '../../src/contract/index.js';
import type { Ingestion, IngestionOptions } from '../../src/ingestion/server.js';
import { eventually, type RawDevice, REDIS_URL, useIngestionStack } from './support.js';

const IMEI = '356307042441013';
const stack = useIngestionStack([
  ...Array.from({ length: 12 }, (_, i) => ({ imei: String(356307042441000 + i), name: `d${i}`, enabled: true })),
  { imei: IMEI, name: 'main', enabled: true },
]);
let a: Ingestion;
let b: Ingestion;

function start(id: string, extra: Partial<IngestionOptions> = {}): Promise<Ingestion> {
  return stack.start(id, { commands: false, ...extra });
}

async function login(ing: Ingestion, imei = IMEI): Promise<RawDevice> {
  const d = await stack.opened.device(ing.tcpPort);
  expect(await d.login(imei)).toBe(1);
  return d;
}

async function holder(imei = IMEI): Promise<string | null> {
  const v = await stack.r.redis.hget(stack.r.keys.connectionsRegistry, imei);
  return v === null ? null : decodeRegistryValue(v).instance;
}

async function events(imei = IMEI) {
  return (await stack.r.redis.xrange(stack.r.keys.connectionsEvents, '-', '+'))
    .map(([, f]) => decodeConnectionEvent(f))
    .filter((e) => e.imei === imei);
}

beforeAll(async () => {
  a = await start('reg-a');
  b = await start('reg-b');
});

describe('registry across two instances', () => {
  it('a late close on the old instance does not remove the entry of the new one', async () => {
    const onA = await login(a);
    expect(await holder()).toBe('reg-a');
    const onB = await login(b);
    expect(await holder()).toBe('reg-b');
    onA.close();
    await eventually(
      async () => (await events()).some((e) => e.type === 'disconnected' && e.instance === 'reg-a'),
      'A records its disconnect',
    );
    expect(await holder()).toBe('reg-b');
    onB.close();
    await eventually(async () => (await holder()) === null, 'B removes its own entry');
  });

  it('the compare-and-delete script only deletes an entry naming the caller', async () => {
    const redis = defineContractScripts(stack.r.redis);
    await redis.hset(stack.r.keys.connectionsRegistry, '1', encodeRegistryValue({ instance: 'reg-b', connectedAt: 1 }));
    // 'reg' is a prefix of 'reg-b' but not the same instance.
    for (const other of ['reg-a', 'reg']) {
      expect(await deregisterConnection(redis, stack.r.keys, { imei: '1', instance: other, at: 2, reason: 'x' })).toBe(
        0,
      );
    }
    expect(await holder('1')).toBe('reg-b');
    expect(await deregisterConnection(redis, stack.r.keys, { imei: '1', instance: 'reg-b', at: 3, reason: 'x' })).toBe(
      1,
    );
    expect(await holder('1')).toBeNull();
  });

  it('reconnect race: whatever order the old close and the new login run in, the live socket is registered', async () => {
    const imeis = Array.from({ length: 12 }, (_, i) => String(356307042441000 + i));
    await Promise.all(
      imeis.map(async (imei, i) => {
        const [from, to] = i % 2 === 0 ? [a, b] : [b, a];
        const old = await login(from, imei);
        // Close the old socket and log in on the other instance at the same moment.
        const [fresh] = await Promise.all([login(to, imei), Promise.resolve(old.close())]);
        await eventually(
          async () => (await events(imei)).filter((e) => e.type === 'disconnected').length === 1,
          `old close of ${imei} recorded`,
        );
        expect(await holder(imei)).toBe(to.instanceId);
        fresh.close();
        await eventually(async () => (await holder(imei)) === null, `${imei} deregistered`);
      }),
    );
  });
});

describe('heartbeat', () => {
  it('is set with a TTL of at most 90 s while the instance runs and removed on a clean stop', async () => {
    const c = await start('reg-hb');
    const ttl = await stack.r.redis.ttl(stack.r.keys.heartbeat('reg-hb'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(90);
    await c.stop();
    expect(await stack.r.redis.exists(stack.r.keys.heartbeat('reg-hb'))).toBe(0);
  });

  it('expires after a crash; a restart with the same id clears the registry entries it left', async () => {
    // `node --import tsx` (not the tsx wrapper) so SIGKILL hits the process that holds the sockets.
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'child-ingest.ts')], {
      env: {
        ...process.env,
        INGEST_CHILD: JSON.stringify({
          instanceId: 'reg-crash',
          redisUrl: REDIS_URL,
          prefix: stack.r.prefix,
          db: stack.db.connection,
          heartbeatTtlSeconds: 1,
          heartbeatRefreshMs: 300,
        }),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout?.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /READY (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
      });
      const d = await stack.opened.device(port);
      expect(await d.login('356307042441005')).toBe(1);
      expect(await holder('356307042441005')).toBe('reg-crash');
      const first = await stack.r.redis.get(stack.r.keys.heartbeat('reg-crash'));
      // Refreshed while alive (the value is the time of the last beat).
      await eventually(
        async () => (await stack.r.redis.get(stack.r.keys.heartbeat('reg-crash'))) !== first,
        'heartbeat refreshed',
      );

      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      await eventually(
        async () => (await stack.r.redis.exists(stack.r.keys.heartbeat('reg-crash'))) === 0,
        'heartbeat expired',
      );
      // The crash left the registry entry behind…
      expect(await holder('356307042441005')).toBe('reg-crash');
      // …until the instance starts again.
      await start('reg-crash');
      expect(await holder('356307042441005')).toBeNull();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
