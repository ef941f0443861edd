/**
 * In a real browser: the admin opens the Reports panel of the Fleet dashboard, picks a device and a
 * range, sees its trips, clicks one and the fleet map draws its track, and exports the report as
 * CSV holding exactly the rows shown. The trips come from the real pipeline: a simulated FMB drives
 * the ground-truth scenario → ingestion → processor → history worker.
 * Screens: artifacts/reports-panel.png, artifacts/reports-map-track.png.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, expect, it } from 'vitest';
import { GROUND_TRUTH_PHASES, scenarioRecords } from '../../daemon/src/simulator/scenario.js';
import { settle, startHistoryPipeline } from '../../daemon/test/history/pipeline.js';
import { waitFor } from '../../daemon/test/processor/support.js';
import {
  type LaunchedChromium,
  launchChromium,
  startDirectus,
  studioLogin,
  type TestDirectus,
  useTestStack,
} from '../../test/support/index.js';
import { ARTIFACTS_DIR, screenshot, serveTiles } from '../src/fleet-map-panel/e2e/studio.js';
import { fromDateTimeLocal, toDateTimeLocal } from '../src/fleet-map-panel/time-range.js';
import { formatTimeIn } from '../src/shared/format/index.js';

const IMEI = '356307042441021';
// Two days ago, 10:00 UTC, in simulated fix times.
const now = new Date();
const T0 = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 2, 10, 0, 0);

const stack = useTestStack();
let directus: TestDirectus;
let browser: LaunchedChromium;

beforeAll(async () => {
  const { db, redis } = stack;
  await db.knex('devices').insert({ imei: IMEI, name: 'Report truck', enabled: true });
  // A second device, so picking one is a real choice.
  await db.knex('devices').insert({ imei: '356307042441039', name: 'Other truck', enabled: true });
  const pipeline = stack.started(await startHistoryPipeline(db, redis), (p) => p.stop());
  await pipeline.send(IMEI, scenarioRecords(GROUND_TRUTH_PHASES, T0).records);
  await settle(db.knex);
  directus = stack.started(
    await startDirectus({ database: db, redisPrefix: redis.prefix, env: { LOG_LEVEL: 'warn' }, timeoutMs: 240_000 }),
    (d) => d.stop(),
  );
  browser = stack.started(await launchChromium({ viewport: { width: 1600, height: 1200 } }), (b) => b.close());
  await browser.context.addInitScript('globalThis.__name = globalThis.__name || ((f) => f);');
  await serveTiles(browser.context);
}, 420_000);

it('the admin picks a device and a range, sees its trips, draws one on the map and exports the CSV of the rows shown', async () => {
  const trips = (
    await (
      await fetch(`${directus.url}/items/trips?sort=start_time&fields=id,start_time,end_time,distance_km`, {
        headers: { authorization: `Bearer ${directus.adminToken}` },
      })
    ).json()
  ).data as { id: number; start_time: string; end_time: string | null; distance_km: string }[];
  expect(trips).toHaveLength(2); // the ground truth: a finished trip and one still going
  const device = await stack.db.knex('devices').where({ imei: IMEI }).first('id');

  const page = browser.context.pages()[0] ?? (await browser.context.newPage());
  page.setDefaultTimeout(120_000);
  await studioLogin(page, directus.url, { email: directus.adminEmail, password: directus.adminPassword }, 120_000);
  const panel = page.locator('.fleet-reports');
  await page.locator('#fleet-reports-run').waitFor();
  await panel.scrollIntoViewIfNeeded();

  // One device and a range around the drive.
  await page.locator('#fleet-reports-all').uncheck();
  await page.locator('#fleet-reports-search').fill('Report');
  await page.locator('#fleet-reports-devices').selectOption(String(device.id));
  await page.locator('#fleet-reports-preset').selectOption('custom');
  await page.locator('#fleet-reports-from').fill(toDateTimeLocal(T0 - 3600_000));
  await page.locator('#fleet-reports-to').fill(toDateTimeLocal(T0 + 3 * 3600_000));
  await page.locator('#fleet-reports-run').click();
  expect(await page.getByRole('tab', { name: 'Trips' }).getAttribute('aria-selected')).toBe('true');

  const rows = page.locator('#fleet-reports-table tbody tr[data-row-id]');
  await expect.poll(() => rows.count(), { timeout: 30_000 }).toBe(2);
  const headers = await page.locator('#fleet-reports-table thead th').allTextContents();
  const shown = await rows.evaluateAll((trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').trim())),
  );
  const col = (label: RegExp) => headers.findIndex((h) => label.test(h));
  const [startCol, endCol, kmCol] = [col(/^Start /), col(/^End /), col(/^Distance/)];
  // The rows are the derived trips, times in the browser's zone with seconds.
  const zone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
  expect(shown.map((c) => c[startCol])).toEqual(trips.map((t) => formatTimeIn(t.start_time, zone)));
  expect(shown.map((c) => Number(c[kmCol]))).toEqual(trips.map((t) => Number(Number(t.distance_km).toFixed(3))));
  expect(await page.locator('#fleet-reports-table tfoot').textContent()).toContain('2 trips');
  await panel.screenshot({ path: `${ARTIFACTS_DIR}/reports-panel.png` });

  // A click on the first trip draws its track on the fleet map (maplibre's rendered features).
  await rows.first().click();
  const trackInfo = page.locator('.fleet-map-panel .track-info');
  await expect.poll(() => trackInfo.textContent(), { timeout: 60_000 }).toMatch(/Report truck: \d+ positions/);
  await waitFor(
    'the trip drawn on the map',
    () =>
      page.evaluate(() => {
        const el = document.querySelector('.fleet-map-panel .map') as HTMLElement & {
          fleetMap?: { map: { queryRenderedFeatures(o: { layers: string[] }): unknown[] } };
        };
        return (el.fleetMap?.map.queryRenderedFeatures({ layers: ['fleet-track-line'] }).length ?? 0) > 0;
      }),
    60_000,
    500,
  );
  // The map's own track range is the trip's (to the second).
  const from = await page.locator('.fleet-map-panel .time-input.from').inputValue();
  expect(fromDateTimeLocal(from)).toBe(Date.parse(trips[0]!.start_time));
  await page.locator('.fleet-map-panel').scrollIntoViewIfNeeded();
  await screenshot(page, 'reports-map-track.png');

  // CSV of the report shown: a header and exactly the rows on screen.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#fleet-reports-csv').click()]);
  expect(download.suggestedFilename()).toMatch(/^trips-.*\.csv$/);
  const csv = readFileSync((await download.path())!, 'utf8')
    .trimEnd()
    .split('\r\n');
  expect(csv).toHaveLength(1 + shown.length);
  const cells = csv
    .slice(1)
    .map((line) => line.match(/("([^"]|"")*"|[^,]*)(,|$)/g)!.map((c) => c.replace(/,$/, '').replace(/^"|"$/g, '')));
  for (const [i, row] of shown.entries()) {
    expect(cells[i]![startCol]).toBe(row[startCol]);
    expect(cells[i]![endCol]).toBe(row[endCol]);
    expect(Number(cells[i]![kmCol])).toBe(Number(row[kmCol]));
  }

  // The dashboard with the panel still fits 1600 px: no horizontal scroll (the table scrolls inside).
  const overflow = await page.evaluate(() => {
    const main = document.querySelector('main') as HTMLElement;
    const reports = document.querySelector('.fleet-reports') as HTMLElement;
    return {
      scroll: main.scrollWidth,
      client: main.clientWidth,
      doc: document.documentElement.scrollWidth,
      panel: reports.scrollWidth - reports.clientWidth,
    };
  });
  expect(overflow.scroll).toBeLessThanOrEqual(overflow.client);
  expect(overflow.doc).toBeLessThanOrEqual(1600);
  expect(overflow.panel).toBe(0);

  // XLSX of the same report: a workbook (a zip) named after the tab.
  const [xlsx] = await Promise.all([page.waitForEvent('download'), page.locator('#fleet-reports-xlsx').click()]);
  expect(xlsx.suggestedFilename()).toMatch(/^trips-.*\.xlsx$/);
  expect(
    readFileSync((await xlsx.path())!)
      .subarray(0, 2)
      .toString(),
  ).toBe('PK');
}, 300_000);
