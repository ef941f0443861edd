/**
 * The webhook path of the outbox against real PostgreSQL and real HTTP receivers: alerts recorded
 * by the after-events hook (as the history derivation calls it), sent by the daemon's `alerts`
 * role, signed, retried, once per delivery id even when the sender dies mid-request.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/index.js';
import { alertsAfterEvents, DEFAULT_ALERTING, type StoredEventLike } from '../../src/alerts/alerting.js';
import { runAlerts } from '../../src/alerts/main.js';
import type { Running } from '../../src/cli.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger, waitFor } from '../processor/support.js';
import { addDevice, addRule, alertsEnv, unusedPort, webhookReceiver } from './support.js';

let db: TestDatabase;
const running: Running[] = [];
const children: ChildProcess[] = [];
const SECRET = 's3cret-for-tests';

beforeAll(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await Promise.allSettled(running.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await db?.drop();
});

let imeiSeq = 356307042440000;
const newImei = () => String(++imeiSeq).padStart(15, '0').slice(0, 15);

/** Stores geofence_enter events for a device and runs the after-events hook in the same transaction. */
async function fire(device: number, times: number[], fence = '7'): Promise<void> {
  const hook = alertsAfterEvents({ ...DEFAULT_ALERTING, rulesTtlMs: 0 });
  const events: StoredEventLike[] = times.map((t, i) => ({
    id: `${device}-${t}-${i}`,
    device,
    type: 'geofence_enter',
    time: t,
    key: fence,
    location: { lat: 54.69, lon: 25.28 },
    attributes: { geofence: Number(fence), geofence_name: 'Depot' },
    position: null,
  }));
  await db.knex.transaction((trx) => hook(trx, { device, settings: { timeZone: 'UTC' }, events, inserted: events }));
}

/** A geofence_enter rule posting to `url`, signed with SECRET. */
const webhookRule = (name: string, url: string) =>
  addRule(db.knex, { name, type: 'geofence_enter', webhook_url: url, webhook_secret: SECRET });

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
  it('POSTs the alert as signed JSON; a re-fired event adds no second alert or delivery', async () => {
    const receiver = await webhookReceiver(SECRET);
    try {
      const device = await addDevice(db.knex, newImei(), 'Van 1');
      const rule = await webhookRule('Depot entry', receiver.url);
      const t = Date.now() - 5000;
      await fire(device, [t]);
      await startSender();
      await waitFor('the webhook', async () => receiver.requests.length === 1);
      // The same event again (a re-derivation, a replay): nothing new.
      await fire(device, [t]);
      const [got] = receiver.requests;
      expect(got!.signatureOk).toBe(true);
      expect(got!.body).toMatchObject({
        rule: { id: rule, name: 'Depot entry', type: 'geofence_enter' },
        device: { id: device, name: 'Van 1' },
        event: { type: 'geofence_enter', key: '7', time: new Date(t).toISOString() },
        position: { type: 'Point', coordinates: [25.28, 54.69] },
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
    const device = await addDevice(db.knex, newImei(), 'Van 2');
    const rule = await webhookRule('Down then up', `http://127.0.0.1:${port}/hook`);
    await fire(device, [Date.now() - 1000]);
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
      const device = await addDevice(db.knex, newImei(), 'Van 3');
      const deadRule = await webhookRule('to a dead end', dead.url);
      const goodRule = await webhookRule('to a live one', good.url);
      const base = Date.now() - 60_000;
      await fire(
        device,
        Array.from({ length: 12 }, (_, i) => base + i * 1000),
      );
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
      const device = await addDevice(db.knex, newImei(), 'Van 4');
      const rule = await webhookRule('Killed', receiver.url);
      await fire(device, [Date.now() - 1000]);
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
