/**
 * The first admin login in the real Studio (headless Chromium): it lands in the app showing
 * devices, positions and commands, with neither of Directus 12's first-login prompts ("Have a
 * license key?", "You have not set a project owner."), which the seed answers in advance. A control
 * run with the seeded answer removed shows the prompt, so the check can fail.
 *
 * Harness API: see test/support/index.ts.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../directus/src/paths.mjs';
import { createTestDatabase, startDirectus, type TestDatabase, type TestDirectus } from './support/index.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const LICENSE_PROMPT = 'Have a license key?';
const OWNER_PROMPT = 'You have not set a project owner.';

let db: TestDatabase;
let directus: TestDirectus;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (set CHROMIUM_PATH)`);
  db = await createTestDatabase();
  directus = await startDirectus({ database: db });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
});

afterAll(async () => {
  await browser?.close();
  await directus?.stop();
  await db?.drop();
});

async function logIn(): Promise<Page> {
  const context = await browser.newContext(); // fresh cookies: no "remind me later" from earlier runs
  const page = await context.newPage();
  await page.goto(`${directus.url}/admin/login`);
  await page.locator('input[type="email"]').fill(directus.adminEmail);
  await page.locator('input[type="password"]').fill(directus.adminPassword);
  await page.locator('button[type="submit"]').click();
  await page.waitForURL((u) => !u.pathname.endsWith('/login'), { timeout: 30_000 });
  return page;
}

describe('first admin login in the Studio', () => {
  it('shows the fleet collections and no set-up prompt', async () => {
    const page = await logIn();
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
