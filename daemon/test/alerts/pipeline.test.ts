/**
 * Alerts from the real producer: AVL records on the telemetry stream → processor (positions,
 * history marks) → history worker with the geofence deriver and the alerts hook (as `daemon
 * derive` registers them) → events → alerts + outbox → the `alerts` role's signed webhook. Then
 * `daemon derive --from` (the command, in a child process) recomputes the window: same events,
 * no second alert, no second delivery. Stale data (a buffer flushed late) is recorded but notifies
 * only the rule asking for it. And the timer-based rules (offline, no_fix) from the sweep.
 */
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
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
  type Drive,
  driveAlong,
  type Pipeline,
  startPipeline,
  webhookReceiver,
} from './support.js';

const SECRET = 'pipeline-secret';

/** A webhook receiver for one test, closed when the test ends. */
async function testReceiver(): Promise<Awaited<ReturnType<typeof webhookReceiver>>> {
  const receiver = await webhookReceiver(SECRET);
  onTestFinished(() => receiver.close());
  return receiver;
}
let db: TestDatabase;
let redis: TestRedis;
let pipeline: Pipeline;
const running: Running[] = [];

beforeAll(async () => {
  [db, redis] = await Promise.all([createTestDatabase(), createTestRedis()]);
  pipeline = await startPipeline(db.connection, redis);
});
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((r) => r.stop()));
});
afterAll(async () => {
  await pipeline?.stop();
  await redis?.cleanup();
  await db?.drop();
});

async function startSender(extra: Record<string, string> = {}): Promise<void> {
  running.push(await runAlerts(loadConfig(alertsEnv(db.connection, extra)), silentLogger));
}

/** `daemon derive --from <from>` as an operator runs it; resolves with its exit code. */
function deriveCommand(from: number): Promise<number | null> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'daemon/src/cli.ts', 'derive', '--from', new Date(from).toISOString()],
    {
      cwd: new URL('../../../', import.meta.url).pathname,
      env: { ...process.env, ...pipeline.env },
      stdio: 'ignore',
    },
  );
  return new Promise((resolve) => child.once('exit', resolve));
}

async function geofenceEvents(device: number) {
  const res = await db.knex.raw<{
    rows: Array<{ id: string; type: string; key: string; attributes: Record<string, unknown> }>;
  }>(
    `SELECT id::text, type, key, attributes FROM events
      WHERE device = ? AND (type LIKE 'geofence_%' OR key LIKE 'zone:%') ORDER BY time, type`,
    [device],
  );
  return res.rows;
}

const counts = async () => {
  const r = await db.knex.raw<{ rows: Array<{ alerts: number; deliveries: number }> }>(
    'SELECT (SELECT count(*) FROM alerts)::int AS alerts, (SELECT count(*) FROM alert_deliveries)::int AS deliveries',
  );
  return r.rows[0]!;
};

describe('alerts from positions', () => {
  it('drive through a zone: one entry, zone overspeed, one exit, each webhook once; derive --from adds nothing', async () => {
    const receiver = await testReceiver();
    const imei = newImei();
    const device = await addDevice(db.knex, imei, 'Van Z');
    // 25.278–25.290 E at 54.69 N: 0.0001° of longitude is about 6.4 m there; margin 15 m.
    const fence = await addFence(db.knex, 'Depot', [25.278, 54.688, 25.29, 54.692], 30);
    const hook = { webhook_url: receiver.url, webhook_secret: SECRET, geofence: fence };
    await addRule(db.knex, { name: 'In', type: 'geofence_enter', ...hook });
    await addRule(db.knex, { name: 'Out', type: 'geofence_exit', ...hook });
    await addRule(db.knex, { name: 'Fast', type: 'overspeed', ...hook });

    const t0 = Date.now() - 12 * 60_000;
    const parkedOutside = Array<number>(25).fill(25.27);
    // Under the zone's limit: one clear fix inside then back out (cancelled by the dwell), then in for good.
    const driveIn = [25.274, 25.279, 25.277, 25.2785, 25.2795, 25.281];
    const parkedInside = Array<number>(25).fill(25.282);
    const first: Drive[] = driveAlong([...parkedOutside, ...driveIn, ...parkedInside], 54.69, t0, [
      ...parkedOutside.map(() => 0),
      ...driveIn.map(() => 25),
      ...parkedInside.map(() => 0),
    ]);
    // Speeding in the zone, then zig-zagging across its east edge (band fixes within 15 m), out.
    const driveOut = [25.283, 25.284, 25.285, 25.2895, 25.2905, 25.2899, 25.291, 25.295];
    const second = driveAlong(driveOut, 54.69, first.at(-1)!.time + 10_000, [50, 55, 20, 25, 25, 25, 25, 40]);

    await pipeline.send(imei, first);
    await startSender();
    await waitFor('the entry webhook', async () => receiver.requests.length === 1, 60_000);
    await pipeline.send(imei, second);
    await waitFor('three webhooks', async () => receiver.unique().length === 3, 60_000);

    const events = await geofenceEvents(device);
    expect(events.map((e) => [e.type, e.key])).toEqual([
      ['geofence_enter', String(fence)],
      ['overspeed_start', `zone:${fence}`],
      ['overspeed_end', `zone:${fence}`],
      ['geofence_exit', String(fence)],
    ]);
    for (const e of events) expect(e.attributes).toMatchObject({ geofence: fence, geofence_name: 'Depot' });
    expect(events[1]!.attributes).toMatchObject({ limit: 30, speed: 50 });

    const bodies = receiver.requests.map((r) => r.body);
    expect(receiver.requests.every((r) => r.signatureOk)).toBe(true);
    expect(bodies.map((b) => b.event.type).sort()).toEqual(['geofence_enter', 'geofence_exit', 'overspeed_start']);
    expect(bodies.map((b) => b.message).sort()).toEqual([
      'Fast: Van Z speeding at 50 km/h (limit 30) in Depot',
      'In: Van Z entered Depot',
      'Out: Van Z left Depot',
    ]);
    const enter = bodies.find((b) => b.event.type === 'geofence_enter')!;
    expect(enter.position?.coordinates[0]).toBeCloseTo(25.2795, 6);
    expect(enter.event.time).toBe(new Date(first[25 + 4]!.time).toISOString());

    // Recompute the whole window and the second half with the command: same event identities,
    // no alert or delivery added.
    const before = await counts();
    expect(before).toEqual({ alerts: 3, deliveries: 3 });
    expect(await deriveCommand(t0 - 3_600_000)).toBe(0);
    expect(await deriveCommand(second[0]!.time)).toBe(0);
    expect(await geofenceEvents(device)).toEqual(events);
    expect(await counts()).toEqual(before);
    await waitFor('every delivery recorded', async () => {
      const r = await db.knex('alert_deliveries').whereNot({ status: 'delivered' }).count('* as n').first();
      return Number(r?.n) === 0;
    });
    expect(receiver.requests).toHaveLength(3);
  }, 240_000);

  it('a buffer flushed late (fixes an hour old): alerts recorded as stale, only the rule asking for stale data notifies', async () => {
    const receiver = await testReceiver();
    const imei = newImei();
    const device = await addDevice(db.knex, imei, 'Late van');
    const fence = await addFence(db.knex, 'Yard', [25.378, 54.688, 25.39, 54.692]);
    const hook = { webhook_url: receiver.url, webhook_secret: SECRET, geofence: fence, devices: [String(device)] };
    const quiet = await addRule(db.knex, { name: 'Quiet', type: 'geofence_enter', ...hook });
    const loud = await addRule(db.knex, { name: 'Loud', type: 'geofence_enter', notify_stale: true, ...hook });
    await startSender();
    await pipeline.send(imei, driveAlong([25.37, 25.3785, 25.3795, 25.381], 54.69, Date.now() - 3_600_000));
    await waitFor('the stale-asking rule’s webhook', async () => receiver.requests.length === 1, 60_000);
    const alerts = await db.knex('alerts').where({ device }).orderBy('rule').select('rule', 'stale');
    expect(alerts).toEqual([
      { rule: quiet, stale: true },
      { rule: loud, stale: true },
    ]);
    const deliveries = await db
      .knex('alert_deliveries')
      .join('alerts', 'alerts.id', 'alert_deliveries.alert')
      .where('alerts.device', device)
      .select('alerts.rule');
    expect(deliveries).toEqual([{ rule: loud }]);
    expect(receiver.requests[0]!.body).toMatchObject({ rule: { id: loud }, stale: true });
  }, 180_000);

  it('offline and no_fix fire from the sweep on what the processor recorded, and resolve when data returns', async () => {
    const receiver = await testReceiver();
    const silentImei = newImei();
    const blindImei = newImei();
    const silent = await addDevice(db.knex, silentImei, 'Silent');
    const blind = await addDevice(db.knex, blindImei, 'Blind');
    const hook = { webhook_url: receiver.url, webhook_secret: SECRET, after_minutes: 1 };
    await addRule(db.knex, { name: 'Gone', type: 'offline', devices: [String(silent)], ...hook });
    await addRule(db.knex, { name: 'Lost', type: 'no_fix', devices: [String(blind)], ...hook });

    const ago = Date.now() - 3 * 60_000;
    // Silent: last heard 3 min ago. Blind: a fix 3 min ago, heard now without a fix.
    await pipeline.send(silentImei, driveAlong([25.1], 54.6, ago), ago);
    await pipeline.send(blindImei, driveAlong([25.2], 54.6, ago), ago);
    await pipeline.send(blindImei, [{ time: Date.now(), lon: 0, lat: 0, speed: 0, satellites: 0 }]);
    await waitFor('the no-fix record', async () => {
      const r = await db.knex('devices').where({ id: blind }).first('last_seen_at');
      return r?.last_seen_at && new Date(r.last_seen_at).getTime() > ago + 60_000;
    });

    await startSender({ ALERT_SWEEP_INTERVAL_MS: '200' });
    await waitFor('two webhooks', async () => receiver.unique().length === 2, 60_000);
    expect(receiver.requests.map((r) => r.body.message).sort()).toEqual([
      'Gone: Silent offline for 1 min',
      'Lost: Blind has no GPS fix for 1 min',
    ]);

    await pipeline.send(silentImei, driveAlong([25.1], 54.6, Date.now()));
    await waitFor('the offline alert resolved', async () => {
      const a = await db.knex('alerts').where({ device: silent }).first('state');
      return a?.state === 'resolved';
    });
    expect((await db.knex('alerts').where({ device: blind }).first('state'))?.state).toBe('open');
  }, 180_000);
});
