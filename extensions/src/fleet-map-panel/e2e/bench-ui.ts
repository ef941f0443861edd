/**
 * `npm run bench:ui`: the Fleet map with 1k and then 10k devices in one run (same Directus, same
 * browser), so the figures can be read as ratios on a noisy shared machine.
 *
 * Server: /fleet/positions full body, conditional (304) and `since` delta. Browser (headless
 * Chromium, software WebGL via SwiftShader, so absolute frame times are pessimistic): dashboard
 * load until every device is in the map, one full refresh (setData → map idle), and frame times
 * while zooming and panning.
 */

import { buildExtensionBundle, extensionBundleStale } from '../../../../directus/src/extension-bundle.mjs';
import {
  createTestDatabase,
  startDirectus,
  type TestDatabase,
  type TestDirectus,
} from '../../../../test/support/index.js';
import type { LoadTimings } from '../fleet-map.js';
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

/** Per fleet size: the same-origin requests still open when the positions request was issued. */
const openAtFetch = new Map<number, string>();

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
  // the map's own marks: idle (basemap tiles in) may come after the devices were seen
  await page.waitForFunction(
    () =>
      (document.querySelector('.fleet-map-panel .map') as HTMLElement & { fleetMap: { timings: LoadTimings } }).fleetMap
        .timings.firstDrawn !== undefined,
    undefined,
    { timeout: 60_000 },
  );
  // The page's own clock (ms since this navigation started): the panel's load timings, the
  // browser's resource timing of the first positions request, and the first paint.
  const trace = await page.evaluate(() => {
    const el = document.querySelector('.fleet-map-panel .map') as HTMLElement & {
      fleetMap: { timings: LoadTimings };
    };
    const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
    const positions = resources.find((r) => r.name.includes('/fleet/positions'));
    const origin = window.location.origin;
    // Same-origin requests still open when ours was issued: HTTP/1.1 allows 6 per host.
    const open = positions
      ? resources.filter(
          (r) =>
            r !== positions &&
            r.name.startsWith(origin) &&
            r.startTime <= positions.startTime &&
            r.responseEnd > positions.startTime,
        )
      : [];
    return {
      ...el.fleetMap.timings,
      firstPaint: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? Number.NaN,
      prefetched: el.fleetMap.timings.prefetched ? 1 : 0,
      issued: positions?.startTime ?? Number.NaN,
      requestSent: positions?.requestStart ?? Number.NaN,
      firstByte: positions?.responseStart ?? Number.NaN,
      responseEnd: positions?.responseEnd ?? Number.NaN,
      openAtFetch: open.length,
      openPaths: open.map((r) => new URL(r.name).pathname).join(' '),
      requestsBefore: resources.filter(
        (r) => r.name.startsWith(origin) && positions && r.startTime < positions.startTime,
      ).length,
    };
  });
  openAtFetch.set(expected, trace.openPaths);
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
        state: { drawn(): unknown };
      };
      const fm = (document.querySelector('.fleet-map-panel .map') as HTMLElement & { fleetMap: FM }).fleetMap;
      const idle = () => new Promise<void>((r) => fm.map.once('idle', () => r()));

      // one full refresh, as a full poll does it: re-cluster in the worker and redraw
      const r0 = performance.now();
      const done = idle();
      fm.map.getSource('fleet-devices').setData(fm.state.drawn());
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
      // where the load goes, ms since the navigation started (the page's clock)
      mountedMs,
      firstPaint: trace.firstPaint,
      bundleLoaded: trace.bundleLoaded ?? Number.NaN,
      panelMounted: trace.mapCreated ?? Number.NaN,
      fetchStarted: trace.fetchStarted ?? Number.NaN,
      prefetched: trace.prefetched,
      issued: trace.issued,
      requestSent: trace.requestSent,
      firstByte: trace.firstByte,
      responseEnd: trace.responseEnd,
      parsed: trace.firstResponse ?? Number.NaN,
      applyMs: trace.applyMs ?? Number.NaN,
      updateMs: trace.updateMs ?? Number.NaN,
      handed: trace.firstSetData ?? Number.NaN,
      styleLoaded: trace.styleLoaded ?? Number.NaN,
      clustered: trace.clustered ?? Number.NaN,
      devicesDrawn: trace.devicesDrawn ?? Number.NaN,
      idle: trace.firstDrawn ?? Number.NaN,
      openAtFetch: trace.openAtFetch,
      requestsBefore: trace.requestsBefore,
      refreshMs,
      frameP50: pct(frames, 0.5),
      frameP95: pct(frames, 0.95),
      baseP50: pct(bare, 0.5),
      baseP95: pct(bare, 0.95),
    }));
}

/** A CPU profile node as Chrome's profiler reports it. */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
}

/**
 * Opens the dashboard once more under Chrome's CPU profiler (main thread only; the map's worker
 * is not in it) until every device is drawn, and sums self time by where the code comes from.
 * A separate open, so the profiler's own cost stays out of the timed figures.
 */
async function profiledOpen(studio: e2e.Studio, d: TestDirectus, expected: number) {
  const { page } = studio;
  const cdp = await studio.context.newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
  await cdp.send('Profiler.start');
  await page.goto(`${d.url}/admin/insights/${e2e.FLEET_DASHBOARD_ID}`);
  const t0 = performance.now();
  for (;;) {
    const r = await e2e.renderedDevices(page);
    if (r && r.state >= expected && r.clustered + r.singles > 0) break;
    if (performance.now() - t0 > 120_000) throw new Error('map did not load');
    await page.waitForTimeout(50);
  }
  const { profile } = (await cdp.send('Profiler.stop')) as unknown as {
    profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };
  };
  await cdp.detach();
  const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const where = new Map<string, number>();
  const functions = new Map<string, number>();
  profile.samples.forEach((id, i) => {
    const f = byNode.get(id);
    const us = profile.timeDeltas[i + 1] ?? 0;
    if (!f) return;
    const file = f.url ? (new URL(f.url).pathname.split('/').pop() ?? f.url) : f.functionName;
    where.set(file, (where.get(file) ?? 0) + us);
    if (f.url) {
      const key = `${f.functionName || '(anonymous)'} ${file}`;
      functions.set(key, (functions.get(key) ?? 0) + us);
    }
  });
  const top = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, us]) => `${k} ${(us / 1000).toFixed(0)}`);
  return { files: top(where, 10), functions: top(functions, 12) };
}

async function main(): Promise<void> {
  if (extensionBundleStale()) buildExtensionBundle();
  const db = await createTestDatabase();
  let directus: TestDirectus | undefined;
  let studio: e2e.Studio | undefined;
  try {
    await addDevices(db, 0, 1000);
    directus = await startDirectus({ database: db });
    studio = await e2e.openStudio({ width: 1920, height: 1200 });
    // the Studio makes more requests than the default 250 resource-timing entries
    await studio.context.addInitScript('performance.setResourceTimingBufferSize(2000);');
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
    const profiled = await profiledOpen(studio, directus, 10_000);
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
    const at = (k: string) => fmt(r10[k]!);
    const gap = (a: string, b: string) => fmt(r10[b]! - r10[a]!);
    console.log(
      `10k: every device drawn ${at('devicesDrawn')} ms after the navigation started (target ≤ 3000: ${r10.devicesDrawn! <= 3000 ? 'met' : 'not met'}); ` +
        `the map idle, basemap tiles included, at ${at('idle')}; the bench saw the devices at ${fmt(r10.loadMs!)}.\n` +
        `  Studio: first paint ${at('firstPaint')}, our bundle evaluated ${at('bundleLoaded')}, the panel mounted ${at('panelMounted')} (+${gap('bundleLoaded', 'panelMounted')}).\n` +
        `  Positions (${r10.prefetched ? 'prefetched at bundle load' : 'asked by the panel'}): issued ${at('issued')}, on the wire ${at('requestSent')} (+${gap('issued', 'requestSent')}; ${fmt(r10.openAtFetch!)} same-origin requests open, ${fmt(r10.requestsBefore!)} before it), ` +
        `first byte ${at('firstByte')} (+${gap('requestSent', 'firstByte')}), last byte ${at('responseEnd')} (+${gap('firstByte', 'responseEnd')}), ` +
        `parsed in the panel's hands ${at('parsed')} (+${gap('responseEnd', 'parsed')}; the panel asked at ${at('fetchStarted')}), main thread ${at('applyMs')} ms to take them and ${at('updateMs')} ms for the legend and list.\n` +
        `  Map: style loaded ${at('styleLoaded')}; positions to the clustering worker ${at('handed')}, clustered ${at('clustered')} (+${gap('handed', 'clustered')}); devices drawn ${at('devicesDrawn')} (+${gap('clustered', 'devicesDrawn')}); idle ${at('idle')} (+${gap('devicesDrawn', 'idle')}).`,
    );
    console.log(`10k: open when the positions were requested: ${openAtFetch.get(10_000) || 'none'}`);
    console.log(
      `10k, one more open under the CPU profiler, main thread self time (ms) until every device was drawn:\n  by file: ${profiled.files.join(' · ')}\n  by function: ${profiled.functions.join(' · ')}`,
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
