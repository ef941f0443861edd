/**
 * End to end, in the system Chromium: Directus with the bundle, the daemon (ingestion + processor)
 * and the simulator with a few hundred devices. Logs in, opens the seeded Fleet dashboard, checks
 * the map really drew the fleet (maplibre's rendered features), draws a track, sends a command from
 * the console and watches it get answered. Screenshots go to artifacts/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  startDirectus,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestDirectus,
} from '../../../../test/support/index.js';
import {
  ARTIFACTS_DIR,
  login,
  openFleetDashboard,
  openStudio,
  renderedDevices,
  type Studio,
  screenshot,
} from './studio.js';

const REPO = join(import.meta.dirname, '../../../..');
const DEVICES = 300;
let db: TestDatabase;
let directus: TestDirectus;
let studio: Studio;
const children: ChildProcess[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

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

async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

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
  studio = await openStudio({ width: 1920, height: 1200 });
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
    // zoomed out over Europe: clusters, and every device is either in a cluster or drawn alone
    expect(drawn.clusters).toBeGreaterThan(0);
    expect(drawn.clustered + drawn.singles).toBeGreaterThan(DEVICES * 0.9);
    expect(studio.problems.filter((p) => /worker|Content Security Policy/i.test(p))).toEqual([]);
  });

  it("draws a moving device's track, then opens its popup and hands it to the console", async () => {
    const { page } = studio;
    // a device that has really moved, so the track is a visible line
    const device = await until('a device with a track', async () => {
      const r = await db.knex.raw(
        `SELECT d.id, d.imei, d.name FROM devices d JOIN positions p ON p.device = d.id
         GROUP BY d.id HAVING count(*) >= 4 AND ST_Length(ST_MakeLine(p.location ORDER BY p.fix_time)::geography) > 100
         ORDER BY d.id LIMIT 1`,
      );
      return r.rows[0] as { id: number; imei: string; name: string } | undefined;
    });
    await page.locator('.fleet-map-panel .device-input').fill(device.imei);
    await page.locator('.fleet-map-panel .device-input').dispatchEvent('change');
    await page.locator('.fleet-map-panel .show-track').click();
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

    // click the device's live marker: its popup has the details and the "Send command" link
    const point = await page.evaluate((id) => {
      const el = document.querySelector('.fleet-map-panel .map') as HTMLElement & {
        fleetMap?: {
          map: { project(c: [number, number]): { x: number; y: number } };
          state: { get(id: number): { geometry: { coordinates: [number, number] } } | undefined };
        };
      };
      const f = el.fleetMap!.state.get(id)!;
      const p = el.fleetMap!.map.project(f.geometry.coordinates);
      const box = el.getBoundingClientRect();
      return { x: box.left + p.x, y: box.top + p.y };
    }, device.id);
    await page.mouse.click(point.x, point.y);
    const popup = page.locator('.fleet-popup');
    await popup.waitFor({ timeout: 10_000 });
    await expect(popup.textContent()).resolves.toContain(device.imei);
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
    await until('the reply', async () => (await row.getAttribute('data-status')) === 'answered', 60_000);
    await expect(row.locator('.reply').textContent()).resolves.not.toBe('');
    await screenshot(page, 'fleet-command.png');
  });

  it('shows the pipeline health with the live ingestion instance and a level colour', async () => {
    const { page } = studio;
    const health = page.locator('.fleet-health');
    await until('the health figures', async () => /1\s+ingestion instances/.test((await health.textContent()) ?? ''));
    await expect(health.locator('.canary').getAttribute('data-level')).resolves.toMatch(/^(ok|warning|critical)$/);
    await expect(health.textContent()).resolves.toContain(`${DEVICES} connections`);
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
    ]);
  });
});
