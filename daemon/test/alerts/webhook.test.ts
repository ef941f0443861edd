/**
 * The webhook path of the outbox against real PostgreSQL and real HTTP receivers: alerts made by
 * the real producer (records on the telemetry stream → processor → history worker with the
 * geofence deriver and alerts hook), sent by the daemon's `alerts` role, signed, retried, once
 * per delivery id even when the sender dies mid-request.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, createTestRedis, type TestDatabase, type TestRedis } from '../../../test/support/index.js';
import { runAlerts } from '../../src/alerts/main.js';
import type { Running } from '../../src/cli.js';
import { loadConfig } from '../../src/config.js';
import { newImei, silentLogger, waitFor } from '../processor/support.js';
import {
  addDevice,
  addFence,
  addRule,
  alertsEnv,
  driveAlong,
  type Pipeline,
  startPipeline,
  unusedPort,
  webhookReceiver,
} from './support.js';

let db: TestDatabase;
let redis: TestRedis;
let pipeline: Pipeline;
let fence: number;
const running: Running[] = [];
const children: ChildProcess[] = [];
const SECRET = 's3cret-for-tests';

beforeAll(async () => {
  [db, redis] = await Promise.all([createTestDatabase(), createTestRedis()]);
  pipeline = await startPipeline(db.connection, redis);
  fence = await addFence(db.knex, 'Depot', [25.278, 54.688, 25.29, 54.692]);
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await Promise.allSettled(running.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await pipeline?.stop();
  await redis?.cleanup();
  await db?.drop();
});

interface Van {
  id: number;
  imei: string;
}
const addVan = async (name: string): Promise<Van> => {
  const imei = newImei();
  return { id: await addDevice(db.knex, imei, name), imei };
};

/**
 * The van drives into the Depot fence `entries` times (in, then out again), one fix every 10 s,
 * ending a minute ago; resolves once the processor and the history worker handled it. Returns the
 * entries' times (their confirming fixes).
 */
async function driveIn(van: Van, entries = 1): Promise<number[]> {
  const lons = [25.274];
  for (let i = 0; i < entries; i++) lons.push(25.2785, 25.2795, 25.2765, 25.2755);
  const drive = driveAlong(lons, 54.69, Date.now() - 60_000 - lons.length * 10_000);
  await pipeline.send(van.imei, drive);
  await pipeline.settled(db.knex);
  return drive.filter((_, i) => i % 4 === 2).map((d) => d.time);
}

/** A rule for the van's entries into Depot posting to `url`, signed with SECRET. */
const webhookRule = (name: string, url: string, van: Van) =>
  addRule(db.knex, {
    name,
    type: 'geofence_enter',
    geofence: fence,
    devices: [String(van.id)],
    webhook_url: url,
    webhook_secret: SECRET,
  });

async function deliveries(alertRule: number) {
  const res = await db.knex.raw<{
    rows: Array<{ id: string; status: string; attempts: number; last_error: string | null }>;
  }>(
    `SELECT d.id::text AS id, d.status, d.attempts, d.last_error FROM alert_deliveries d JOIN alerts a ON a.id = d.alert
      WHERE a.rule = ? AND d.channel = 'webhook' ORDER BY d.id`,
    [alertRule],
  );
  return res.rows;
}

async function startSender(extra: Record<string, string> = {}): Promise<Running> {
  const r = await runAlerts(loadConfig(alertsEnv(db.connection, extra)), silentLogger);
  running.push(r);
  return r;
}

describe('webhook deliveries', () => {
  it('POSTs the alert as signed JSON; the same records again (a replay) add no second alert or delivery', async () => {
    const receiver = await webhookReceiver(SECRET);
    try {
      const van = await addVan('Van 1');
      const device = van.id;
      const rule = await webhookRule('Depot entry', receiver.url, van);
      const [t] = await driveIn(van);
      await startSender();
      await waitFor('the webhook', async () => receiver.requests.length === 1);
      // The device resends what it already sent (a lost ack): nothing new.
      const drive = driveAlong([25.274, 25.2785, 25.2795, 25.2765, 25.2755], 54.69, t! - 20_000);
      await pipeline.send(van.imei, drive);
      await pipeline.settled(db.knex);
      const [got] = receiver.requests;
      expect(got!.signatureOk).toBe(true);
      expect(got!.body).toMatchObject({
        rule: { id: rule, name: 'Depot entry', type: 'geofence_enter' },
        device: { id: device, name: 'Van 1' },
        event: { type: 'geofence_enter', key: String(fence), time: new Date(t!).toISOString() },
        position: { type: 'Point', coordinates: [25.2795, 54.69] },
        message: 'Depot entry: Van 1 entered Depot',
        stale: false,
      });
      await waitFor('delivered', async () => (await deliveries(rule))[0]?.status === 'delivered');
      expect(await deliveries(rule)).toHaveLength(1);
      expect(got!.delivery).toBe((await deliveries(rule))[0]!.id);
      const alerts = await db.knex('alerts').where({ rule });
      expect(alerts).toHaveLength(1);
      expect(receiver.requests).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });

  it('receiver down, then up: retried with backoff, received exactly once', async () => {
    const port = await unusedPort();
    const van = await addVan('Van 2');
    const rule = await webhookRule('Down then up', `http://127.0.0.1:${port}/hook`, van);
    await driveIn(van);
    await startSender();
    const failed = await waitFor('two failed attempts', async () => {
      const [d] = await deliveries(rule);
      return d && d.attempts >= 2 && d.status === 'pending' ? d : undefined;
    });
    expect(failed.last_error).toMatch(/ECONNREFUSED/);
    const receiver = await webhookReceiver(SECRET, port);
    try {
      await waitFor('delivered', async () => (await deliveries(rule))[0]?.status === 'delivered');
      expect(receiver.requests).toHaveLength(1);
      expect(receiver.requests[0]!.signatureOk).toBe(true);
      expect(receiver.requests[0]!.attempt).toBeGreaterThanOrEqual(3);
    } finally {
      await receiver.close();
    }
  });

  it('a dead endpoint holds at most its per-target slots; every other delivery goes through meanwhile', async () => {
    const dead = await webhookReceiver(SECRET);
    dead.hold = true;
    const good = await webhookReceiver(SECRET);
    try {
      const van = await addVan('Van 3');
      const deadRule = await webhookRule('to a dead end', dead.url, van);
      const goodRule = await webhookRule('to a live one', good.url, van);
      await driveIn(van, 12);
      // Long timeout: the dead endpoint's requests stay open for the whole test.
      await startSender({ ALERT_WEBHOOK_TIMEOUT_MS: '30000', ALERT_CONCURRENCY: '4', ALERT_PER_TARGET: '2' });
      await waitFor('every live delivery', async () =>
        (await deliveries(goodRule)).every((d) => d.status === 'delivered'),
      );
      expect(good.unique()).toHaveLength(12);
      expect(dead.open()).toBeLessThanOrEqual(2);
      expect((await deliveries(deadRule)).filter((d) => d.status === 'delivered')).toHaveLength(0);
    } finally {
      await dead.close();
      await good.close();
    }
  });

  it('sender killed -9 mid-request: after its lease the delivery is sent again with the same id; one distinct delivery', async () => {
    const receiver = await webhookReceiver(SECRET);
    receiver.hold = true;
    try {
      const van = await addVan('Van 4');
      const rule = await webhookRule('Killed', receiver.url, van);
      await driveIn(van);
      const child = spawn(process.execPath, ['--import', 'tsx', 'daemon/src/cli.ts', 'alerts'], {
        cwd: new URL('../../../', import.meta.url).pathname,
        env: { ...process.env, ...alertsEnv(db.connection, { ALERT_WEBHOOK_TIMEOUT_MS: '1000' }) },
        stdio: 'ignore',
      });
      children.push(child);
      await waitFor('the first request', async () => receiver.requests.length === 1, 60_000);
      const exited = new Promise((res) => child.once('exit', res));
      child.kill('SIGKILL');
      await exited;
      // The receiver got the request (and would act on it) but the sender never heard back.
      receiver.hold = false;
      receiver.release();
      expect((await deliveries(rule))[0]).toMatchObject({ status: 'sending', attempts: 1 });

      await startSender({ ALERT_WEBHOOK_TIMEOUT_MS: '1000' });
      await waitFor('delivered', async () => (await deliveries(rule))[0]?.status === 'delivered');
      expect(receiver.requests).toHaveLength(2);
      expect(receiver.requests.map((r) => r.attempt)).toEqual([1, 2]);
      expect(receiver.unique()).toHaveLength(1);
      expect(receiver.requests.every((r) => r.signatureOk)).toBe(true);
    } finally {
      await receiver.close();
    }
  });
});
