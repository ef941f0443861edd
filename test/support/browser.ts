/**
 * The system Chromium driven by playwright-core (no downloaded browsers), and the Studio login form:
 * one launch recipe for every browser test and the UI bench.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { chromiumPath } from '../../directus/src/preflight.mjs';

export const CHROMIUM_PATH = chromiumPath();

export interface LaunchedChromium {
  context: BrowserContext;
  /** Closes the browser and removes its profile directory. */
  close(): Promise<void>;
}

/**
 * Headless Chromium on a fresh profile of its own (so no cookies or storage carry over between
 * launches) without background traffic to Google; `viewport` defaults to playwright's.
 */
export async function launchChromium(
  opts: { viewport?: { width: number; height: number } } = {},
): Promise<LaunchedChromium> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`Chromium not found at ${CHROMIUM_PATH} (set CHROMIUM_PATH)`);
  const userDataDir = mkdtempSync(join(tmpdir(), 'fleet-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    ...(opts.viewport ? { viewport: opts.viewport } : {}),
  });
  // Playwright's 30 s per action: the Studio's first clicks took longer than that at load 15.
  context.setDefaultTimeout(90_000);
  return {
    context,
    async close() {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Signs in through the Studio's login form; resolves once the app has left the login page. */
export async function studioLogin(
  page: Page,
  url: string,
  credentials: { email: string; password: string },
  timeoutMs: number,
): Promise<void> {
  await page.goto(`${url}/admin/login`);
  await page.locator('input[type="email"]').fill(credentials.email);
  await page.locator('input[type="password"]').fill(credentials.password);
  await page.locator('button[type="submit"]').click();
  await page.waitForURL((u) => !u.pathname.endsWith('/login'), { timeout: timeoutMs });
}
