/**
 * Driving the Directus Studio in the system Chromium (playwright-core, no downloaded browsers),
 * shared by the dashboard end-to-end test and `npm run bench:ui`.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, studioLogin } from '../../../../test/support/browser.js';
import { FLEET_DASHBOARD_ID } from '../../shared/selection/links.js';

export { FLEET_DASHBOARD_ID };

export const ARTIFACTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../../../artifacts');

export interface Studio {
  context: BrowserContext;
  page: Page;
  /** Browser console errors and failed requests, to print when something goes wrong. */
  problems: string[];
  close(): Promise<void>;
}

export async function openStudio(opts: { width?: number; height?: number } = {}): Promise<Studio> {
  const { context, close } = await launchChromium({
    viewport: { width: opts.width ?? 1600, height: opts.height ?? 1000 },
  });
  // tsx (esbuild keepNames) wraps named functions in __name(); functions we pass to
  // page.evaluate carry that call into the page, so give the page a no-op.
  await context.addInitScript('globalThis.__name = globalThis.__name || ((f) => f);');
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    const error = r.failure()?.errorText ?? '';
    // Chromium cancels a page's in-flight requests when the test navigates away: not a failure.
    if (error === 'net::ERR_ABORTED') return;
    problems.push(`requestfailed: ${r.url()} ${error}`);
  });
  return {
    context,
    page,
    problems,
    close,
  };
}

/** Signs in as the given user; the dashboard test and `bench:ui` give the Studio 90 s. */
export function login(page: Page, url: string, email: string, password: string): Promise<void> {
  return studioLogin(page, url, { email, password }, 90_000);
}

export async function openFleetDashboard(page: Page, url: string): Promise<void> {
  // The seed makes the dashboard the admin's landing page; navigate only when elsewhere.
  const target = `/admin/insights/${FLEET_DASHBOARD_ID}`;
  if (new URL(page.url()).pathname !== target) await page.goto(`${url}${target}`);
  await page.locator('.fleet-map-panel .map canvas').waitFor({ timeout: 120_000 });
}

export interface RenderedDevices {
  /** Devices the panel holds (from the last poll). */
  state: number;
  clusters: number;
  /** Devices inside rendered clusters. */
  clustered: number;
  singles: number;
}

/** What the map actually drew, read from maplibre's rendered features. */
export function renderedDevices(page: Page): Promise<RenderedDevices | null> {
  return page.evaluate(() => {
    type M = {
      loaded(): boolean;
      queryRenderedFeatures(o: { layers: string[] }): { properties: Record<string, unknown> }[];
    };
    const el = document.querySelector('.fleet-map-panel .map') as
      | (HTMLElement & { fleetMap?: { map: M; state: { size: number } } })
      | null;
    const fm = el?.fleetMap;
    if (!fm?.map.loaded()) return null;
    const clusters = fm.map.queryRenderedFeatures({ layers: ['fleet-clusters'] });
    const singles = fm.map.queryRenderedFeatures({ layers: ['fleet-devices'] });
    // The same cluster can be reported once per tile it touches: count each cluster id once.
    const seen = new Map<unknown, number>();
    for (const c of clusters) seen.set(c.properties.cluster_id, Number(c.properties.point_count));
    return {
      state: fm.state.size,
      clusters: seen.size,
      clustered: [...seen.values()].reduce((a, b) => a + b, 0),
      singles: new Set(singles.map((s) => s.properties.id)).size,
    };
  });
}

export function screenshot(page: Page, name: string): Promise<Buffer> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  return page.screenshot({ path: join(ARTIFACTS_DIR, name) });
}

/** OpenStreetMap tile URLs, as the Studio's default basemap asks for them. */
export const OSM_TILES = /^https:\/\/[abc]\.tile\.openstreetmap\.org\/\d+\/\d+\/\d+\.png$/;
/** A 256 × 256 PNG standing in for a street tile (there is no network here). */
const TILE = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'tile.png'));

/**
 * Answers the browser's tile requests locally: with the stand-in tile, or as failed when `fail`.
 * Returns the URLs asked for, so a test can check the map requested the configured tiles.
 */
export async function serveTiles(context: BrowserContext, opts: { fail?: boolean } = {}): Promise<string[]> {
  const asked: string[] = [];
  await context.route(OSM_TILES, (route) => {
    asked.push(route.request().url());
    return opts.fail
      ? route.abort('internetdisconnected')
      : route.fulfill({ status: 200, contentType: 'image/png', body: TILE });
  });
  return asked;
}
