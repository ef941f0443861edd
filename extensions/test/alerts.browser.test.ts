/**
 * In a real browser: the admin imports a geofence from the Alerts panel, an entry rule exists for
 * it, a device drives in; the alert appears in the Alerts panel without a reload, the admin's bell
 * lists it, and the Acknowledge button acknowledges it. Final screen: artifacts/alerts-panel.png.
 *
 * The drive is measured by the geofence check's own PostGIS query and hysteresis, and the alert
 * recorded by the daemon's after-events hook (the pieces the history derivation runs).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { alertsAfterEvents, DEFAULT_ALERTING, type StoredEventLike } from '../../daemon/src/alerts/alerting.js';
import { measureFixes } from '../../daemon/src/alerts/geofence-sql.js';
import { DEFAULT_HYSTERESIS, type FenceFix, geofenceEvents } from '../../daemon/src/alerts/hysteresis.js';
import { waitFor } from '../../daemon/test/processor/support.js';
import {
  createTestDatabase,
  type LaunchedChromium,
  launchChromium,
  startDirectus,
  studioLogin,
  type TestDatabase,
  type TestDirectus,
} from '../../test/support/index.js';
import { addDevice } from './support/commands-harness.js';

const ARTIFACTS = join(process.cwd(), 'artifacts');
let db: TestDatabase;
let directus: TestDirectus;
let browser: LaunchedChromium;

beforeAll(async () => {
  db = await createTestDatabase();
  directus = await startDirectus({
    database: db,
    env: { LOG_LEVEL: 'warn', FLEET_ALERTS_SEND_CRON: '* * * * * *' },
    timeoutMs: 240_000,
  });
  browser = await launchChromium({ viewport: { width: 1600, height: 1200 } });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await directus?.stop();
  await db?.drop();
});

/** A device drives east through the fence, one fix every 10 s; returns after its events were stored. */
async function driveIn(device: number): Promise<void> {
  const start = Date.now() - 60_000;
  const lons = [25.27, 25.275, 25.279, 25.2805, 25.281, 25.2815];
  const fixes = lons.map((lon, i) => ({ lon, lat: 54.69, time: start + i * 10_000 }));
  await db.knex.transaction(async (trx) => {
    const measured = await measureFixes(trx, fixes, DEFAULT_HYSTERESIS.marginM);
    const fenceFixes: FenceFix[] = fixes.map((f, i) => ({
      ...f,
      position: null,
      speed: 40,
      flagged: false,
      fences: measured.distances.get(i) ?? new Map(),
    }));
    const { events } = geofenceEvents(fenceFixes, measured.fences, new Map(), DEFAULT_HYSTERESIS);
    const stored: StoredEventLike[] = events.map((e, i) => ({
      id: i + 1,
      device,
      type: e.type,
      time: e.time,
      key: e.key,
      location: { lat: e.lat, lon: e.lon },
      attributes: e.attributes,
      position: null,
    }));
    expect(stored.map((e) => e.type)).toEqual(['geofence_enter']);
    await alertsAfterEvents({ ...DEFAULT_ALERTING, rulesTtlMs: 0 })(trx, {
      device,
      settings: { timeZone: 'UTC' },
      events: stored,
      inserted: stored,
    });
  });
}

it('import a geofence, a device drives in: the alert shows in the Alerts panel and the bell, and is acknowledged', async () => {
  const device = await addDevice(db.knex, 'Browser truck');
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  // The login click waits for the Studio to load the Fleet dashboard (map bundle), slow on a busy machine.
  page.setDefaultTimeout(120_000);
  await studioLogin(page, directus.url, { email: directus.adminEmail, password: directus.adminPassword }, 120_000);
  // The admin lands on the Fleet dashboard, which holds the Alerts panel.
  await page.locator('#fleet-alerts-count').waitFor({ timeout: 60_000 });

  const depot = {
    type: 'FeatureCollection',
    features: [
      {
        type: 'Feature',
        properties: { name: 'Browser depot' },
        geometry: {
          type: 'Polygon',
          coordinates: [
            [
              [25.278, 54.688],
              [25.29, 54.688],
              [25.29, 54.692],
              [25.278, 54.692],
              [25.278, 54.688],
            ],
          ],
        },
      },
    ],
  };
  await page.locator('#fleet-geofence-import').setInputFiles({
    name: 'depot.geojson',
    mimeType: 'application/geo+json',
    buffer: Buffer.from(JSON.stringify(depot)),
  });
  await page.getByRole('status').filter({ hasText: 'Imported 1 geofence: Browser depot' }).waitFor();
  const fence = await db.knex('geofences').where({ name: 'Browser depot' }).first('id');
  expect(fence).toBeTruthy();

  const me = await (
    await fetch(`${directus.url}/users/me?fields=id`, { headers: { authorization: `Bearer ${directus.adminToken}` } })
  ).json();
  const rule = await fetch(`${directus.url}/items/alert_rules`, {
    method: 'POST',
    headers: { authorization: `Bearer ${directus.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'Depot entry',
      type: 'geofence_enter',
      geofence: fence.id,
      notify_users: [me.data.id],
    }),
  });
  expect(rule.status).toBe(200);

  await driveIn(device.id);
  const row = page.locator('li.alert').filter({ hasText: 'Depot entry: Browser truck entered Browser depot' });
  await row.waitFor({ timeout: 30_000 });
  await expect.poll(() => page.locator('#fleet-alerts-count').textContent()).toBe('1 open');

  // The bell: the in-app notification, delivered through the outbox.
  await waitFor(
    'the notification row',
    async () => (await db.knex('directus_notifications').count('* as n').first())?.n === '1',
  );
  await page.locator('.notifications-badge').click();
  // The drawer lists it next to the panel's row: the text shows twice.
  await expect
    .poll(() => page.getByText('Depot entry: Browser truck entered Browser depot').count(), { timeout: 30_000 })
    .toBeGreaterThan(1);
  await page.keyboard.press('Escape');

  await row.getByRole('button', { name: /Acknowledge alert/ }).click();
  await expect.poll(() => page.locator('#fleet-alerts-count').textContent(), { timeout: 30_000 }).toBe('0 open');
  const stored = await db.knex('alerts').first('state', 'acknowledged_by');
  expect(stored).toEqual({ state: 'acknowledged', acknowledged_by: me.data.id });
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'alerts-panel.png'), fullPage: true });
}, 180_000);
