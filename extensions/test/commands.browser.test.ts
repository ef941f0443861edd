/**
 * In a real browser: the admin logs in to the Directus app, creates a command for a simulated
 * device through the Commands form, and watches it become `answered` with the device's reply.
 * The final screen is saved as artifacts/commands-answered.png.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, expect, it } from 'vitest';
import type { Ingestion } from '../../daemon/src/ingestion/server.js';
import { startTestIngestion } from '../../daemon/test/ingestion/support.js';
import { type StudioSession, startStudio, studioLogin, useTestStack, waitFor } from '../../test/support/index.js';
import { addDevice, simulatedDevice } from './support/commands-harness.js';

const ARTIFACTS = join(process.cwd(), 'artifacts');

const stack = useTestStack();
let ingestion: Ingestion;
let studio: StudioSession;

beforeAll(async () => {
  const { db, redis } = stack;
  studio = stack.started(
    await startStudio({
      database: db,
      redisPrefix: redis.prefix,
      env: { LOG_LEVEL: 'warn' },
      viewport: { width: 1400, height: 1000 },
    }),
    (s) => s.stop(),
  );
  ingestion = stack.started(
    await startTestIngestion(db.knex, {
      instanceId: 'ing-browser',
      redisUrl: redis.url,
      redisPrefix: redis.prefix,
      deviceCacheTtlMs: 0,
    }),
    (i) => i.stop(),
  );
});

async function fieldText(page: Page, field: string): Promise<string> {
  const box = page.locator(`[data-field="${field}"]`);
  const input = box.locator('input, textarea').first();
  if ((await input.count()) > 0) return input.inputValue();
  return ((await box.textContent()) ?? '').trim();
}

it('an admin sends getver from the Directus app and sees the answer', async () => {
  const dev = await addDevice(stack.db.knex, 'Browser van');
  const device = stack.started(simulatedDevice(dev.imei, ingestion.tcpPort), (d) => d.close());
  expect(await device.connect()).toBe(true);
  await waitFor(
    'registry',
    async () => (await stack.redis.redis.hget(stack.redis.keys.connectionsRegistry, dev.imei)) ?? undefined,
  );

  const page = studio.browser.context.pages()[0] ?? (await studio.browser.context.newPage());
  await studioLogin(
    page,
    studio.directus.url,
    { email: studio.directus.adminEmail, password: studio.directus.adminPassword },
    60_000,
  );

  await page.goto(`${studio.directus.url}/admin/content/commands/+`);
  await page.locator('[data-field="device"] .placeholder').click();
  // The relation opens a "Select Item" drawer with its own Save button.
  await page.getByText('Browser van').first().click();
  await page.getByRole('button', { name: 'Save', exact: true }).last().click();
  await page.getByText('Select Item').waitFor({ state: 'hidden' });
  await page.locator('[data-field="text"] input').fill('getver');
  await page.getByRole('button', { name: 'Save', exact: true }).first().click();

  // Saving returns to the list; the new command is the only one.
  const id = await waitFor('the command to be stored', async () => {
    const row = await stack.db.knex('commands').where({ device: dev.id }).first('id');
    return row ? Number(row.id) : undefined;
  });
  await page.goto(`${studio.directus.url}/admin/content/commands/${id}`);
  await page.locator('[data-field="status"]').waitFor();
  // The item form does not live-update; reload until the answer shows.
  await waitFor(
    'the form to show answered',
    async () => {
      if ((await fieldText(page, 'status')).includes('answered')) return true;
      await page.reload();
      await page.locator('[data-field="status"]').waitFor();
      return undefined;
    },
    30_000,
    500,
  );
  const response = await fieldText(page, 'response');
  expect(response).toMatch(new RegExp(`^Ver:.* IMEI:${dev.imei} `));
  expect(device.answered.map((a) => a.command)).toEqual(['getver']);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'commands-answered.png'), fullPage: true });
}, 120_000);
