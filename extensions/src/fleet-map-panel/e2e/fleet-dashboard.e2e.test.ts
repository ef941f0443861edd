/**
 * End to end, in the system Chromium: Directus with the bundle, the daemon (ingestion + processor)
 * and the simulator with a few hundred devices. Logs in at 1600 × 1000, opens the seeded Fleet
 * dashboard, checks the map asked for street tiles (served here by the test: no internet) and drew
 * the fleet fitted to the view (maplibre's rendered features), the popup follows the device, Enter
 * draws a track that replays, the console sends commands (an offline device's stays queued) and
 * the health panel speaks plainly. A second browser with failing tiles sees the outlines and the
 * note. Screenshots go to artifacts/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_POPUP_ATTRIBUTES } from '@fleet/daemon/contract/attributes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  freePort,
  startDirectus,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestDirectus,
  waitFor,
} from '../../../../test/support/index.js';
import { describeAttribute } from '../popup.js';
import {
  ARTIFACTS_DIR,
  login,
  openFleetDashboard,
  openStudio,
  renderedDevices,
  type Studio,
  screenshot,
  serveTiles,
} from './studio.js';

const REPO = join(import.meta.dirname, '../../../..');
const DEVICES = 300;
let tileRequests: string[] = [];
let db: TestDatabase;
let directus: TestDirectus;
let studio: Studio;
const children: ChildProcess[] = [];

function daemon(args: string[], env: Record<string, string>, log: string): ChildProcess {
  const child = spawn(process.execPath, [join(REPO, 'node_modules/tsx/dist/cli.mjs'), 'daemon/src/cli.ts', ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = createWriteStream(join(ARTIFACTS_DIR, log));
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  children.push(child);
  return child;
}

/** Moves the Studio to another page without reloading the app (a reload costs most of a minute here). */
async function studioGo(page: Studio['page'], path: string): Promise<void> {
  await page.evaluate((p) => {
    history.pushState({}, '', p);
    dispatchEvent(new PopStateEvent('popstate'));
  }, `/admin${path}`);
}

/** The Studio is slow to settle on a busy machine: a minute by default, polled twice a second. */
const until = <T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000) =>
  waitFor(what, fn, timeoutMs, 500);

/** A device that has really moved, so its track is a visible line (a parked one has stops only). */
const movingDevice = () =>
  until('a device with a track', async () => {
    const r = await db.knex.raw(
      `SELECT d.id, d.imei, d.name FROM devices d JOIN positions p ON p.device = d.id
       GROUP BY d.id HAVING count(*) >= 4 AND ST_Length(ST_MakeLine(p.location ORDER BY p.fix_time)::geography) > 100
       ORDER BY d.id LIMIT 1`,
    );
    return r.rows[0] as { id: number; imei: string; name: string } | undefined;
  });

beforeAll(async () => {
  db = await createTestDatabase();
  directus = await startDirectus({ database: db });
  const [ingestPort, m1, m2] = [await freePort(), await freePort(), await freePort()];
  const env = {
    DB_HOST: db.connection.host,
    DB_PORT: String(db.connection.port),
    DB_DATABASE: db.connection.database,
    DB_USER: db.connection.user,
    DB_PASSWORD: db.connection.password ?? '',
    REDIS: TEST_REDIS_URL,
    FLEET_REDIS_PREFIX: directus.redisPrefix as string,
    INSTANCE_ID: 'e2e-ingest',
    INGEST_HOST: '127.0.0.1',
    INGEST_PORT: String(ingestPort),
    INGEST_METRICS_PORT: String(m1),
    PROCESS_METRICS_PORT: String(m2),
    LOG_LEVEL: 'warn',
  };
  await import('node:fs').then((fs) => fs.mkdirSync(ARTIFACTS_DIR, { recursive: true }));
  daemon(['all'], env, 'e2e-daemon.log');
  daemon(
    [
      'simulate',
      '--devices',
      String(DEVICES),
      '--rate',
      '0.2',
      '--records',
      '1',
      '--port',
      String(ingestPort),
      '--register',
      '--seed',
      '42',
      '--center',
      '50.0,10.0',
      '--radius-km',
      '600',
      '--duration',
      '600',
    ],
    env,
    'e2e-simulator.log',
  );
  await until(
    `${DEVICES} devices with a position`,
    async () => {
      const [{ n }] = (await db.knex('devices').whereNotNull('last_location').count({ n: '*' })) as [{ n: string }];
      return Number(n) >= DEVICES;
    },
    120_000,
  );
  studio = await openStudio({ width: 1600, height: 1000 });
  tileRequests = await serveTiles(studio.context);
}, 240_000);

afterAll(async () => {
  await studio?.close();
  for (const c of children) c.kill('SIGINT');
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
  await directus?.stop();
  await db?.drop();
}, 60_000);

// The Studio's first load on a busy 2-core machine can take most of a minute.
describe('Fleet dashboard in the Studio', { timeout: 180_000 }, () => {
  it('shows every device on the map, clustered when zoomed out', async () => {
    const { page } = studio;
    await login(page, directus.url, directus.adminEmail, directus.adminPassword);
    await openFleetDashboard(page, directus.url);
    const drawn = await until(
      'devices drawn on the map',
      async () => {
        const r = await renderedDevices(page);
        return r && r.state >= DEVICES && r.clusters > 0 ? r : null;
      },
      120_000,
    );
    await page.waitForTimeout(500);
    await screenshot(page, 'fleet-dashboard.png');
    // clusters, and every device is either in a cluster or drawn alone
    expect(drawn.clusters).toBeGreaterThan(0);
    expect(drawn.clustered + drawn.singles).toBeGreaterThan(DEVICES * 0.9);
    expect(studio.problems.filter((p) => /worker|Content Security Policy/i.test(p))).toEqual([]);
    // the Studio's default basemap (OpenStreetMap) was asked for and drawn: no fallback note
    expect(tileRequests.length).toBeGreaterThan(0);
    await expect(page.locator('.fleet-map-panel .basemap-note').count()).resolves.toBe(0);
    // opened fitted to the fleet (a 600 km disc), not the world at zoom 1
    const view = await page.evaluate(() => {
      const el = document.querySelector('.fleet-map-panel .map') as HTMLElement & {
        fleetMap: {
          map: { getZoom(): number; getBounds(): { contains(c: [number, number]): boolean } };
          state: { drawn(): { features: { geometry: { coordinates: [number, number] } }[] } };
        };
      };
      const fm = el.fleetMap;
      const features = fm.state.drawn().features;
      return {
        zoom: fm.map.getZoom(),
        outside: features.filter((f) => !fm.map.getBounds().contains(f.geometry.coordinates)).length,
      };
    });
    expect(view.outside).toBe(0);
    expect(view.zoom).toBeGreaterThan(3);
    // the legend counts every device by status, including those that never sent a position
    const legend = await page.locator('.fleet-legend').textContent();
    expect(legend).toMatch(/moving\s*[\d,]+/);
    expect(legend).toMatch(/offline\s*[\d,]+/);
    expect(legend).toMatch(/no position yet\s*\d+/);
  });

  it('opened again, takes its first positions from the request started when the Studio loaded the bundle', async () => {
    const { page } = studio;
    await page.reload();
    await page.locator('.fleet-map-panel .map canvas').waitFor({ timeout: 120_000 });
    await until(
      'devices drawn on the map',
      async () => {
        const r = await renderedDevices(page);
        return r && r.state >= DEVICES && r.clusters > 0 ? r : null;
      },
      120_000,
    );
    const prefetched = await page.evaluate(
      () =>
        (
          document.querySelector('.fleet-map-panel .map') as HTMLElement & {
            fleetMap: { timings: { prefetched?: boolean } };
          }
        ).fleetMap.timings.prefetched,
    );
    expect(prefetched).toBe(true);
  });

  it('has no horizontal scrollbar on the dashboard at 1600 × 1000', async () => {
    const { page } = studio;
    const overflow = await page.evaluate(() => {
      const main = document.querySelector('main') as HTMLElement;
      return { scroll: main.scrollWidth, client: main.clientWidth, doc: document.documentElement.scrollWidth };
    });
    expect(overflow.scroll).toBeLessThanOrEqual(overflow.client);
    expect(overflow.doc).toBeLessThanOrEqual(1600);
  });

  it("draws a moving device's track, then opens its popup and hands it to the console", async () => {
    const { page } = studio;
    const device = await movingDevice();
    await page.locator('.fleet-map-panel .device-input').fill(device.imei);
    await page.locator('.fleet-map-panel .device-input').press('Enter');
    await until('a track drawn', async () =>
      page.evaluate(() => {
        const el = document.querySelector('.fleet-map-panel .map') as HTMLElement & {
          fleetMap?: { map: { queryRenderedFeatures(o: { layers: string[] }): unknown[] } };
        };
        const m = el.fleetMap!.map;
        return (
          m.queryRenderedFeatures({ layers: ['fleet-track-line'] }).length > 0 &&
          m.queryRenderedFeatures({ layers: ['fleet-track-ends'] }).length >= 2
        );
      }),
    );
    // the summary appears once the refetch at the fitted zoom is done
    await until('the track summary', async () =>
      /\d+ positions/.test((await page.locator('.fleet-map-panel .status').textContent()) ?? ''),
    );
    await page.waitForTimeout(500);
    await screenshot(page, 'fleet-track.png');

    // replay: play moves the time and the marker along the track
    const replayTime = page.locator('.fleet-map-panel .replay-time');
    const before = await replayTime.textContent();
    await page.locator('.fleet-map-panel .replay-speed').selectOption('1200');
    await page.locator('.fleet-map-panel .replay-play').click();
    await until('the replay to advance', async () => (await replayTime.textContent()) !== before, 20_000);
    expect(await replayTime.textContent()).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} · /);
    await screenshot(page, 'fleet-replay.png');
    await page.locator('.fleet-map-panel .replay-play').click(); // pause

    // click the device's live marker: its popup has the details and the "Send command" link. The
    // device is still driving: it can leave the view fitted to its track (or pass under the replay
    // bar), and a poll moves it in the panel's state before the map's worker has re-tiled. So the
    // map is first centred on it, as a user would pan, and the click aims at the marker as drawn.
    const popup = page.locator('.fleet-popup');
    await until(
      "the live marker's popup",
      async () => {
        const point = await page.evaluate((id) => {
          const el = document.querySelector('.fleet-map-panel .map') as HTMLElement & {
            fleetMap?: {
              map: {
                project(c: [number, number]): { x: number; y: number };
                jumpTo(o: { center: [number, number] }): void;
                queryRenderedFeatures(o: { layers: string[] }): {
                  properties: { id: unknown };
                  geometry: { type: string; coordinates: [number, number] };
                }[];
              };
              state: { get(id: number): { geometry: { coordinates: [number, number] } } | undefined };
            };
          };
          const fm = el.fleetMap!;
          const m = fm.map;
          const box = el.getBoundingClientRect();
          const drawn = m
            .queryRenderedFeatures({ layers: ['fleet-devices'] })
            .find((f) => String(f.properties.id) === String(id) && f.geometry.type === 'Point');
          const p = drawn && m.project(drawn.geometry.coordinates);
          const central = (v: number, size: number) => v > size * 0.25 && v < size * 0.75;
          if (!p || !central(p.x, box.width) || !central(p.y, box.height)) {
            m.jumpTo({ center: drawn?.geometry.coordinates ?? fm.state.get(id)!.geometry.coordinates });
            return null;
          }
          return { x: box.left + p.x, y: box.top + p.y };
        }, device.id);
        if (!point) return false;
        await page.mouse.click(point.x, point.y);
        return popup.waitFor({ timeout: 2_000 }).then(
          () => true,
          () => false,
        );
      },
      20_000,
    );
    await expect(popup.textContent()).resolves.toContain(device.imei);
    // The default attributes are the ones the processor stored from the simulator's IO elements.
    const shown = await popup.locator('th').allTextContents();
    for (const key of DEFAULT_POPUP_ATTRIBUTES) expect(shown).toContain(describeAttribute(key, null).label);
    // the popup follows the device while open: its last fix changes with the next report
    const fix = await popup.locator('.fleet-popup-fix').textContent();
    await until(
      'the popup to update',
      async () => (await popup.locator('.fleet-popup-fix').textContent()) !== fix,
      60_000,
    );
    await screenshot(page, 'fleet-popup.png');
    await popup.locator('[data-action="send-command"]').click();
    await expect(page.locator('.fleet-console .chosen').textContent()).resolves.toContain(device.imei);
  });

  it('sends a command from the console and shows its reply', async () => {
    const { page } = studio;
    const device = (await db.knex('devices').whereNotNull('last_location').orderBy('id').first()) as { imei: string };
    const consolePanel = page.locator('.fleet-console');
    await consolePanel.locator('.device-search').fill(device.imei);
    await consolePanel.locator('.result').first().click();
    await consolePanel.locator('select.template').selectOption('getinfo');
    await consolePanel.locator('button.send').click();
    const row = consolePanel.locator('.command-row').first();
    await row.waitFor({ timeout: 15_000 });
    await expect(row.locator('.text').textContent()).resolves.toBe('getinfo');
    const stored = await db.knex('commands').where({ text: 'getinfo' }).first();
    expect(stored).toBeTruthy();
    await until('the reply', async () => (await row.getAttribute('data-status')) === 'answered', 60_000).catch(
      async (err: Error) => {
        const now = await db.knex('commands').where({ id: stored.id }).first();
        throw new Error(`${err.message}; the command is ${JSON.stringify(now)}`);
      },
    );
    await expect(row.locator('.reply').textContent()).resolves.not.toBe('');
    await screenshot(page, 'fleet-command.png');
  });

  it("says an offline device's command is queued until it connects, and asks before switching outputs", async () => {
    const { page } = studio;
    const [offline] = (await db
      .knex('devices')
      .insert({ imei: '356307099999990', name: 'Parked van', enabled: true })
      .returning(['id', 'imei'])) as { id: number; imei: string }[];
    const consolePanel = page.locator('.fleet-console');
    await consolePanel.locator('.device-search').fill(offline!.imei);
    await consolePanel.locator('.result').first().click();
    await consolePanel.locator('.command-text').fill('setdigout 1');
    await consolePanel.locator('button.send').click();
    // an output switch is confirmed first; nothing is stored before that
    await consolePanel.locator('.confirm').waitFor({ timeout: 10_000 });
    expect(await db.knex('commands').where({ device: offline!.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
    await consolePanel.locator('.confirm-send').click();
    const message = consolePanel.locator('.message');
    await until('the queued wording', async () =>
      /Queued until the device connects/.test((await message.textContent()) ?? ''),
    );
    expect(await message.textContent()).not.toMatch(/\bsent\b/i);
    await screenshot(page, 'fleet-command-offline.png');
  });

  it('shows the pipeline health with the live ingestion instance and a level colour', async () => {
    const { page } = studio;
    const health = page.locator('.fleet-health');
    await until('the health figures', async () => /1\s+ingestion instances/.test((await health.textContent()) ?? ''));
    await until('a processing rate', async () =>
      /[\d.]+\s+data packets processed per second/.test((await health.textContent()) ?? ''),
    );
    await expect(health.locator('.headline').textContent()).resolves.toMatch(/\w+/);
    await expect(health.locator('.canary').getAttribute('data-level')).resolves.toMatch(/^(ok|warning|critical)$/);
    await expect(health.textContent()).resolves.toContain(`${DEVICES} connections`);
  });

  it("finds a device's positions by IMEI in the Content module, newest first", async () => {
    const { page } = studio;
    const device = (await db.knex('devices').whereNotNull('last_location').orderBy('id').first()) as {
      imei: string;
      name: string;
    };
    await studioGo(page, '/content/positions');
    const search = page.locator('.search-input');
    await search.click({ timeout: 60_000 });
    await search.locator('input').fill(device.imei);
    const rows = page.locator('.v-table tbody .table-row');
    // until the search has replaced the unfiltered list the page opened with
    const texts = await until(
      'positions of the device only',
      async () => {
        const t = await rows.allTextContents();
        return t.length > 0 && t.every((x) => x.includes(device.name)) ? t : null;
      },
      60_000,
    );
    // the location reads as coordinates (latitude, longitude), not as GeoJSON
    for (const t of texts) expect(t).toMatch(/-?\d{1,2}\.\d{5}, -?\d{1,3}\.\d{5}/);
    // the first column is the fix time with seconds, newest first
    const times = texts.map((t) => /\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}/.exec(t)?.[0] ?? '');
    expect(times[0]).not.toBe('');
    expect(times).toEqual([...times].sort().reverse());
    await screenshot(page, 'content-positions-search.png');
  });

  it('shows a device item with its latest positions and commands, and links to its track and the console', async () => {
    const { page } = studio;
    // its track must have a line to find on the map
    const device = await movingDevice();
    await studioGo(page, `/content/devices/${device.id}`);
    const links = page.locator('.fleet-device-links');
    await links.waitFor({ timeout: 60_000 });
    const rows = links.locator('.position-row');
    await until('the latest positions', async () => (await rows.count()) > 0);
    expect(await rows.first().locator('.where').textContent()).toMatch(/^-?\d{1,2}\.\d{5}, -?\d{1,3}\.\d{5}$/);
    await screenshot(page, 'content-device-item.png');

    // The fleet's first answer may come after the track's (a busy server): it must not reframe the
    // map to the whole fleet, where a short track is too small to draw. Hold it back so it does.
    const positions = '**/fleet/positions?**';
    await page.route(positions, async (route) => {
      await new Promise((r) => setTimeout(r, 4_000));
      await route.continue().catch(() => {});
    });
    await links.locator('a.track').click();
    const trackView = () =>
      page.evaluate(() => {
        const el = document.querySelector('.fleet-map-panel .map') as
          | (HTMLElement & {
              fleetMap?: {
                timings: { firstResponse?: number };
                map: {
                  loaded(): boolean;
                  getZoom(): number;
                  queryRenderedFeatures(o: { layers: string[] }): unknown[];
                };
              };
            })
          | null;
        const fm = el?.fleetMap;
        if (!fm) return null;
        return {
          answered: fm.timings.firstResponse !== undefined,
          idle: fm.map.loaded(),
          zoom: fm.map.getZoom(),
          lines: fm.map.queryRenderedFeatures({ layers: ['fleet-track-line'] }).length,
        };
      });
    const drawn = await until('the track drawn from the link', async () => {
      const v = await trackView();
      return v && v.lines > 0 ? v : null;
    });
    const settled = await until('the fleet answered and the map idle', async () => {
      const v = await trackView();
      return v?.answered && v.idle ? v : null;
    });
    await page.unroute(positions);
    expect(settled.zoom).toBe(drawn.zoom);
    expect(settled.lines).toBeGreaterThan(0);
    await expect(page.locator('.fleet-map-panel .device-input').inputValue()).resolves.toContain(device.imei);

    await studioGo(page, `/content/devices/${device.id}`);
    await links.locator('a.command').click();
    await until('the console on the device', async () =>
      (
        (await page
          .locator('.fleet-console .chosen')
          .textContent()
          .catch(() => '')) ?? ''
      ).includes(device.imei),
    );
  });

  it('creates commands with only device, text and expiry, and shows a created command read-only', async () => {
    const { page } = studio;
    await studioGo(page, '/content/commands/+');
    await page.locator('.field[data-field="text"]').waitFor({ timeout: 60_000 });
    const shown = await page
      .locator('.field[data-field]')
      .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.field));
    expect(shown.sort()).toEqual(['device', 'expires_at', 'text']);
    await expect(page.locator('.fleet-command-live').count()).resolves.toBe(0);
    await screenshot(page, 'content-command-create.png');

    const answered = (await db.knex('commands').where({ status: 'answered' }).first()) as { id: number };
    await studioGo(page, `/content/commands/${answered.id}`);
    const text = page.locator('.field[data-field="text"] input');
    await text.waitFor({ timeout: 60_000 });
    await expect(text.isDisabled()).resolves.toBe(true);
    await expect(page.locator('.field[data-field="status"]').textContent()).resolves.toContain('answered');
    // the live box on the item: status in words and the reply
    const live = page.locator('.fleet-command-live');
    await until('the live status', async () => (await live.getAttribute('data-status')) === 'answered');
    await expect(live.textContent()).resolves.toMatch(/The device answered/);
    await screenshot(page, 'content-command-item.png');
  });

  it('falls back to the country outlines, and says so, when no street tile loads', async () => {
    const offline = await openStudio({ width: 1600, height: 1000 });
    // a second browser loads the whole Studio cold: give it time on a busy machine
    offline.page.setDefaultNavigationTimeout(180_000);
    offline.page.setDefaultTimeout(120_000);
    try {
      const asked = await serveTiles(offline.context, { fail: true });
      await login(offline.page, directus.url, directus.adminEmail, directus.adminPassword);
      await openFleetDashboard(offline.page, directus.url);
      const note = offline.page.locator('.fleet-map-panel .basemap-note');
      await note.waitFor({ timeout: 60_000 });
      expect(await note.textContent()).toMatch(/could not be loaded: showing country outlines/);
      expect(asked.length).toBeGreaterThan(0);
      // the outlines are there to be seen (once the worker has parsed the GeoJSON, which can come
      // after the tile errors that raise the note)
      await until('the country outlines drawn', () =>
        offline.page.evaluate(() => {
          const el = document.querySelector('.fleet-map-panel .map') as HTMLElement & {
            fleetMap: { map: { queryRenderedFeatures(o: { layers: string[] }): unknown[] } };
          };
          return el.fleetMap.map.queryRenderedFeatures({ layers: ['countries-fill'] }).length > 0;
        }),
      );
      await screenshot(offline.page, 'fleet-offline-basemap.png');
    } finally {
      await offline.close();
    }
  });

  it('keeps exactly one Fleet dashboard with its panels when the seed runs again', async () => {
    const seedModule = '../../../../directus/src/seed.mjs';
    const pathsModule = '../../../../directus/src/paths.mjs';
    const { applySeed } = (await import(seedModule)) as {
      applySeed(conn: unknown, o: { seedDir: string }): Promise<void>;
    };
    const { SEED_DIR } = (await import(pathsModule)) as { SEED_DIR: string };
    await applySeed(db.connection, { seedDir: SEED_DIR });
    const auth = { authorization: `Bearer ${directus.adminToken}` };
    const dashboards = (await (
      await fetch(`${directus.url}/dashboards?filter[name][_eq]=Fleet&fields=id,panels.type`, { headers: auth })
    ).json()) as {
      data: { id: string; panels: { type: string }[] }[];
    };
    expect(dashboards.data).toHaveLength(1);
    expect(dashboards.data[0]!.panels.map((p) => p.type).sort()).toEqual([
      'fleet-alerts',
      'fleet-command-console',
      'fleet-map',
      'fleet-pipeline-health',
      'fleet-reports',
    ]);
  });
});
