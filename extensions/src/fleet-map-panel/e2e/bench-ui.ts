/**
 * `npm run bench:ui`: the Fleet map with 1k and then 10k devices in one run (same Directus, same
 * browser), so the figures can be read as ratios on a noisy shared machine.
 *
 * Server: /fleet/positions full body, conditional (304) and `since` delta. Browser (headless
 * Chromium, software WebGL via SwiftShader, so absolute frame times are pessimistic): dashboard
 * load until every device is in the map, one full refresh (setData → map idle), and frame times
 * while zooming and panning.
 */

import {
  createTestDatabase,
  startDirectus,
  type TestDatabase,
  type TestDirectus,
} from '../../../../test/support/index.js';
import * as e2e from './studio.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? Number.NaN;

/** Devices spread over Europe, a third moving, a third parked, a third offline. */
async function addDevices(db: TestDatabase, from: number, to: number): Promise<void> {
  await db.knex.raw(
    `INSERT INTO devices (imei, name, online, last_speed, last_heading, last_seen_at, last_fix_at, last_location, last_attributes)
     SELECT (350000000000000 + i)::text, 'Bench ' || i, i % 3 <> 2, CASE WHEN i % 3 = 0 THEN 40 + i % 50 ELSE 0 END, i % 360,
            now() - (i % 600) * interval '1 second', now() - (i % 600) * interval '1 second',
            ST_SetSRID(ST_MakePoint(-9 + random() * 38, 36 + random() * 24), 4326),
            json_build_object('ignition', i % 3 = 0, 'externalVoltage', 12.1 + (i % 20) / 10.0)
     FROM generate_series(?::int, ?::int) i`,
    [from, to - 1],
  );
}

async function timeFetch(url: string, token: string, headers: Record<string, string> = {}) {
  const t0 = performance.now();
  // as a browser asks; the byte count is what crossed the wire (undici decompresses the body)
  const res = await fetch(url, {
    headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip', ...headers },
  });
  const body = await res.arrayBuffer();
  const wire = Number(res.headers.get('content-length') ?? body.byteLength);
  return { ms: performance.now() - t0, status: res.status, bytes: wire, headers: res.headers };
}

async function serverFigures(d: TestDirectus, db: TestDatabase) {
  const url = `${d.url}/fleet/positions`;
  const full: number[] = [];
  let etag = '';
  let bytes = 0;
  let cursor = '';
  for (let i = 0; i < 5; i++) {
    const r = await timeFetch(url, d.adminToken);
    full.push(r.ms);
    etag = r.headers.get('etag') ?? '';
    cursor = r.headers.get('x-fleet-cursor') ?? '';
    bytes = r.bytes;
  }
  const cond: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await timeFetch(url, d.adminToken, { 'if-none-match': etag });
    if (r.status !== 304) throw new Error(`expected 304, got ${r.status}`);
    cond.push(r.ms);
  }
  // 100 devices report: a delta poll carries only those (plus the overlap window)
  await db.knex.raw(
    `UPDATE devices SET last_seen_at = to_timestamp(? / 1000.0) WHERE id IN (SELECT id FROM devices ORDER BY random() LIMIT 100)`,
    [Number(cursor) + 120_000],
  );
  const delta: number[] = [];
  let deltaBytes = 0;
  for (let i = 0; i < 5; i++) {
    const r = await timeFetch(`${url}?since=${Number(cursor) + 60_000}`, d.adminToken);
    delta.push(r.ms);
    deltaBytes = r.bytes;
  }
  return {
    fullMs: median(full),
    fullKB: bytes / 1024,
    notModifiedMs: median(cond),
    deltaMs: median(delta),
    deltaKB: deltaBytes / 1024,
  };
}

async function browserFigures(studio: e2e.Studio, d: TestDirectus, expected: number, shot: string) {
  const { page } = studio;
  // A fresh open of the dashboard (the Studio's code is cached by then), as an admin coming back.
  const t0 = performance.now();
  await page.goto(`${d.url}/admin/insights/${e2e.FLEET_DASHBOARD_ID}`);
  await page.locator('.fleet-map-panel .map canvas').waitFor({ timeout: 120_000 });
  const mountedMs = performance.now() - t0;
  for (;;) {
    const r = await e2e.renderedDevices(page);
    if (r && r.state >= expected && r.clustered + r.singles > 0) break;
    if (performance.now() - t0 > 120_000) throw new Error('map did not load');
    await page.waitForTimeout(50);
  }
  const loadMs = performance.now() - t0;
  const timings = await page.evaluate(() => {
    const el = document.querySelector('.fleet-map-panel .map') as HTMLElement & {
      fleetMap: { timings: Record<string, number> };
    };
    return el.fleetMap.timings;
  });
  await page.waitForTimeout(1000);
  await e2e.screenshot(page, shot);

  return page
    .evaluate(async () => {
      type FM = {
        map: {
          getSource(id: string): { setData(d: unknown): void };
          once(ev: string, cb: () => void): void;
          easeTo(o: object): void;
          getZoom(): number;
          getCenter(): { lng: number; lat: number };
        };
        state: { collection(): unknown };
      };
      const fm = (document.querySelector('.fleet-map-panel .map') as HTMLElement & { fleetMap: FM }).fleetMap;
      const idle = () => new Promise<void>((r) => fm.map.once('idle', () => r()));

      // one full refresh, as a full poll does it: re-cluster in the worker and redraw
      const r0 = performance.now();
      const done = idle();
      fm.map.getSource('fleet-devices').setData(fm.state.collection());
      await done;
      const refreshMs = performance.now() - r0;

      // frame times while zooming in and out and panning, 4 s; once without the device layers
      // (the basemap alone: the peer) and once with them
      const animate = async (): Promise<number[]> => {
        const frames: number[] = [];
        let last = performance.now();
        let running = true;
        const tick = (t: number) => {
          frames.push(t - last);
          last = t;
          if (running) requestAnimationFrame(tick);
        };
        requestAnimationFrame((t) => {
          last = t;
          requestAnimationFrame(tick);
        });
        const c = fm.map.getCenter();
        const z = fm.map.getZoom();
        const steps: object[] = [
          { zoom: z + 2, duration: 1000 },
          { center: [c.lng + 4, c.lat + 2], duration: 1000 },
          { zoom: z - 1, duration: 1000 },
          { center: [c.lng, c.lat], zoom: z, duration: 1000 },
        ];
        for (const s of steps) {
          const moved = new Promise<void>((r) => fm.map.once('moveend', () => r()));
          fm.map.easeTo(s);
          await moved;
        }
        running = false;
        return frames.slice(1);
      };
      const layers = ['fleet-clusters', 'fleet-devices'];
      for (const l of layers)
        (fm.map as unknown as { setLayoutProperty(l: string, k: string, v: string): void }).setLayoutProperty(
          l,
          'visibility',
          'none',
        );
      const bare = await animate();
      for (const l of layers)
        (fm.map as unknown as { setLayoutProperty(l: string, k: string, v: string): void }).setLayoutProperty(
          l,
          'visibility',
          'visible',
        );
      const frames = await animate();
      return { refreshMs, frames, bare };
    })
    .then(({ refreshMs, frames, bare }) => ({
      loadMs,
      // where the load goes: Studio boot until the panel's map exists, then (ms after the map was
      // created) its style, the positions answer, the hand-over to the worker and the first draw
      mountedMs,
      styleMs: timings.styleLoaded ?? Number.NaN,
      answeredMs: timings.firstResponse ?? Number.NaN,
      applyMs: timings.applyMs ?? Number.NaN,
      handedMs: timings.firstSetData ?? Number.NaN,
      drawnMs: timings.firstDrawn ?? Number.NaN,
      refreshMs,
      frameP50: pct(frames, 0.5),
      frameP95: pct(frames, 0.95),
      baseP50: pct(bare, 0.5),
      baseP95: pct(bare, 0.95),
    }));
}

async function main(): Promise<void> {
  const db = await createTestDatabase();
  let directus: TestDirectus | undefined;
  let studio: e2e.Studio | undefined;
  try {
    await addDevices(db, 0, 1000);
    directus = await startDirectus({ database: db });
    studio = await e2e.openStudio({ width: 1920, height: 1200 });
    // street tiles as the Studio's default basemap asks for them, served locally (no network here)
    await e2e.serveTiles(studio.context);
    await e2e.login(studio.page, directus.url, directus.adminEmail, directus.adminPassword);
    // warm-up: the first Studio load compiles and caches the app; measure later loads only
    await e2e.openFleetDashboard(studio.page, directus.url);

    const results: Record<string, Record<string, number>> = {};
    for (const n of [1000, 10_000]) {
      if (n > 1000) await addDevices(db, 1000, n);
      const server = await serverFigures(directus, db);
      const browser = await browserFigures(studio, directus, n, `bench-ui-${n}.png`);
      results[`${n} devices`] = { ...server, ...browser };
    }
    const fmt = (v: number) => (Number.isFinite(v) ? (v >= 100 ? v.toFixed(0) : v.toFixed(1)) : '–');
    const keys = Object.keys(results['1000 devices']!);
    const rows = keys.map((k) => {
      const a = results['1000 devices']![k]!;
      const b = results['10000 devices']![k]!;
      return `${k.padEnd(14)} ${fmt(a).padStart(9)} ${fmt(b).padStart(9)} ${`${(b / a).toFixed(2)}x`.padStart(8)}`;
    });
    console.log(
      `\nFleet map benchmark (ms unless named; medians; one run)\n${'figure'.padEnd(14)} ${'1k'.padStart(9)} ${'10k'.padStart(9)} ${'10k/1k'.padStart(8)}`,
    );
    console.log(rows.join('\n'));
    const r10 = results['10000 devices']!;
    console.log(
      `10k: opening the dashboard took ${fmt(r10.loadMs!)} ms: the Studio mounted the panel after ${fmt(r10.mountedMs!)} ms; then, from the map's creation, its style loaded at ${fmt(r10.styleMs!)}, the positions arrived at ${fmt(r10.answeredMs!)} (main thread ${fmt(r10.applyMs!)} ms to take them), went to the clustering worker at ${fmt(r10.handedMs!)} and were drawn at ${fmt(r10.drawnMs!)}.`,
    );
    console.log(`10k: frame time p95 with devices / basemap alone: ${(r10.frameP95! / r10.baseP95!).toFixed(2)}x`);
    console.log(
      `10k: a poll of an unchanged fleet (304) costs ${(r10.notModifiedMs! / r10.fullMs!).toFixed(2)} of a full poll; a 100-device delta ${(r10.deltaKB! / r10.fullKB!).toFixed(3)} of its bytes.`,
    );
    if (studio.problems.length) console.log(`browser problems:\n  ${studio.problems.slice(0, 10).join('\n  ')}`);
  } finally {
    await studio?.close();
    await directus?.stop();
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
