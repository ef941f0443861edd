/**
 * The first admin login in the real Studio (headless Chromium): it lands in the app showing
 * devices, positions and commands, landing on the seeded Fleet dashboard, with neither of Directus 12's first-login prompts ("Have a
 * license key?", "You have not set a project owner."), which the seed answers in advance. A control
 * run with the seeded answer removed shows the prompt, so the check can fail.
 *
 * Harness API: see test/support/index.ts.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../directus/src/paths.mjs';
import { FLEET_DASHBOARD_ID } from '../extensions/src/shared/selection/links.js';
import {
  createTestDatabase,
  type LaunchedChromium,
  launchChromium,
  startDirectus,
  studioLogin,
  type TestDatabase,
  type TestDirectus,
} from './support/index.js';

const LICENSE_PROMPT = 'Have a license key?';
const FLEET_DASHBOARD = `/admin/insights/${FLEET_DASHBOARD_ID}`;
const OWNER_PROMPT = 'You have not set a project owner.';

let db: TestDatabase;
let directus: TestDirectus;
const browsers: LaunchedChromium[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  directus = await startDirectus({ database: db });
});

afterAll(async () => {
  for (const b of browsers) await b.close();
  await directus?.stop();
  await db?.drop();
});

async function logIn(): Promise<Page> {
  // A browser with a fresh profile each time: no "remind me later" from earlier runs.
  const browser = await launchChromium();
  browsers.push(browser);
  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  await studioLogin(page, directus.url, { email: directus.adminEmail, password: directus.adminPassword }, 30_000);
  return page;
}

describe('first admin login in the Studio', () => {
  it('lands on the Fleet dashboard, shows the fleet collections and no set-up prompt', async () => {
    const page = await logIn();
    // The seed points users who never navigated at the Fleet dashboard.
    await page.waitForURL((u) => u.pathname === FLEET_DASHBOARD, { timeout: 30_000 });
    // the map panel itself (by its class: "Fleet" names the project and the dashboard too); a cold
    // Studio on a loaded 2-core machine can take over a minute to mount five panels
    await page.locator('.fleet-map-panel').first().waitFor({ timeout: 120_000 });
    await page.goto(`${directus.url}/admin/content`);
    try {
      for (const name of ['Devices', 'Positions', 'Commands']) {
        await page.getByText(name, { exact: true }).first().waitFor({ timeout: 30_000 });
      }
    } catch (err) {
      mkdirSync(join(REPO_ROOT, 'artifacts'), { recursive: true });
      await page.screenshot({ path: join(REPO_ROOT, 'artifacts', 'studio-login.png') });
      throw err;
    }
    expect(await page.getByText(LICENSE_PROMPT).count()).toBe(0);
    expect(await page.getByText(OWNER_PROMPT).count()).toBe(0);
    await page.context().close();
  });

  it('(control) shows the license prompt when the seeded usage answer is missing', async () => {
    await db.knex('directus_settings').update({ project_usage: null });
    const page = await logIn();
    await expect(page.getByText(LICENSE_PROMPT).first().waitFor({ timeout: 30_000 })).resolves.toBeUndefined();
    await page.context().close();
  });
});
