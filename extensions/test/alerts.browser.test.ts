/**
 * In a real browser: the admin imports a geofence from the Alerts panel, an entry rule exists for
 * it, a device drives in; the alert appears in the Alerts panel without a reload, the admin's bell
 * lists it, the fleet map shows the geofence (its toggle) and rings the device (artifacts/alerts-map.png),
 * and the Acknowledge button acknowledges it (the ring goes, without a reload). Final screen:
 * artifacts/alerts-panel.png.
 *
 * The drive is the real producer: AVL records on the telemetry stream → processor → history worker
 * with the geofence deriver and the alerts hook, as `daemon derive` runs them.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { driveAlong, type Pipeline, startPipeline } from '../../daemon/test/alerts/support.js';
import { waitFor } from '../../daemon/test/processor/support.js';
import { type StudioSession, startStudio, studioLogin, useTestStack } from '../../test/support/index.js';
import { addDevice } from './support/commands-harness.js';

const ARTIFACTS = join(process.cwd(), 'artifacts');
const stack = useTestStack();
let pipeline: Pipeline;
let studio: StudioSession;

beforeAll(async () => {
  pipeline = stack.started(await startPipeline(stack.db.connection, stack.redis), (p) => p.stop());
  studio = await startStudio({
    database: stack.db,
    env: { LOG_LEVEL: 'warn', FLEET_ALERTS_SEND_CRON: '* * * * * *' },
    timeoutMs: 240_000,
    viewport: { width: 1600, height: 1200 },
  });
  stack.started(studio, (s) => s.stop());
}, 300_000);

/** A device drives east into the fence, one fix every 10 s, ending a minute ago, through the real producer. */
async function driveIn(imei: string): Promise<void> {
  const lons = [25.27, 25.275, 25.279, 25.2805, 25.281, 25.2815];
  await pipeline.send(imei, driveAlong(lons, 54.69, Date.now() - 60_000 - lons.length * 10_000, [], 10));
  await pipeline.settled(stack.db.knex);
  const events = await stack.db.knex('events').where({ type: 'geofence_enter' }).count('* as n').first();
  expect(Number(events?.n)).toBe(1);
}

/** The fleet map panel's maplibre instance (the panel exposes it for tests and benchmarks). */
const renderedGeofences = (page: import('playwright-core').Page) =>
  page.evaluate(() => {
    const el = document.querySelector('.fleet-map-panel .map') as HTMLElement & {
      fleetMap?: { map: { queryRenderedFeatures(o: { layers: string[] }): unknown[] } };
    };
    return el.fleetMap?.map.queryRenderedFeatures({ layers: ['fleet-geofences-fill'] }).length ?? 0;
  });

it('import a geofence, a device drives in: the alert shows in the Alerts panel and the bell, and is acknowledged', async () => {
  const device = await addDevice(stack.db.knex, 'Browser truck');
  const page = studio.browser.context.pages()[0] ?? (await studio.browser.context.newPage());
  // The login click waits for the Studio to load the Fleet dashboard (map bundle), slow on a busy machine.
  page.setDefaultTimeout(120_000);
  await studioLogin(
    page,
    studio.directus.url,
    { email: studio.directus.adminEmail, password: studio.directus.adminPassword },
    120_000,
  );
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
  const fence = await stack.db.knex('geofences').where({ name: 'Browser depot' }).first('id');
  expect(fence).toBeTruthy();

  const me = await (
    await fetch(`${studio.directus.url}/users/me?fields=id`, {
      headers: { authorization: `Bearer ${studio.directus.adminToken}` },
    })
  ).json();
  const rule = await fetch(`${studio.directus.url}/items/alert_rules`, {
    method: 'POST',
    headers: { authorization: `Bearer ${studio.directus.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      name: 'Depot entry',
      type: 'geofence_enter',
      geofence: fence.id,
      notify_users: [me.data.id],
    }),
  });
  expect(rule.status).toBe(200);

  await driveIn(device.imei);
  const row = page.locator('li.alert').filter({ hasText: 'Depot entry: Browser truck entered Browser depot' });
  await row.waitFor({ timeout: 30_000 });
  await expect.poll(() => page.locator('#fleet-alerts-count').textContent()).toBe('1 open');

  // The bell: the in-app notification, delivered through the outbox.
  await waitFor(
    'the notification row',
    async () => (await stack.db.knex('directus_notifications').count('* as n').first())?.n === '1',
  );
  await page.locator('.notifications-badge').click();
  // The drawer lists it next to the panel's row: the text shows twice.
  await expect
    .poll(() => page.getByText('Depot entry: Browser truck entered Browser depot').count(), { timeout: 30_000 })
    .toBeGreaterThan(1);
  await page.keyboard.press('Escape');

  // The fleet map: the geofence layer behind its toggle, and a ring on the device with the open alert.
  const map = page.locator('.fleet-map-panel .map');
  const toggle = page.locator('.fleet-map-panel .map button.toggle-geofences');
  await expect.poll(() => toggle.getAttribute('aria-pressed')).toBe('false');
  await toggle.click();
  await expect.poll(() => toggle.getAttribute('aria-pressed')).toBe('true');
  await expect.poll(() => map.getAttribute('data-geofences'), { timeout: 30_000 }).toBe('1');
  const ring = page.locator(`.fleet-alert-mark[data-device="${device.id}"]`);
  await ring.waitFor({ timeout: 30_000 });
  expect(await ring.getAttribute('role')).toBe('img');
  expect(await ring.getAttribute('data-open')).toBe('1');
  // Centred on the device (the ring sits on it), the fence is drawn around it.
  await page.locator(`.fleet-map-panel .device-row[data-device="${device.id}"]`).click();
  await expect.poll(() => renderedGeofences(page), { timeout: 30_000 }).toBeGreaterThan(0);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'alerts-map.png') });

  await row.getByRole('button', { name: /Acknowledge alert/ }).click();
  await expect.poll(() => page.locator('#fleet-alerts-count').textContent(), { timeout: 30_000 }).toBe('0 open');
  const stored = await stack.db.knex('alerts').first('state', 'acknowledged_by');
  expect(stored).toEqual({ state: 'acknowledged', acknowledged_by: me.data.id });
  // Acknowledged: the map's ring goes at its next poll, without a reload.
  await ring.waitFor({ state: 'detached', timeout: 30_000 });
  await toggle.click();
  await expect.poll(() => map.getAttribute('data-geofences')).toBeNull();
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'alerts-panel.png'), fullPage: true });
}, 180_000);
