/**
 * bench:alerts — the geofence check and the alert path, on a fresh clone of the test template.
 *
 * 1. Geofence check cost per fix with 1,000 active geofences: the index-assisted measurement the
 *    derivation uses (`measureFixes`) against testing every fence for every fix (`scanEveryFence`),
 *    on the same fixes in the same run; both must give the same distances.
 * 2. Position commit → webhook received, p50/p99, at a steady rate (default 20k records/s) with 100
 *    rules: positions written by the processor's writer (which marks the history windows), the
 *    history worker with the geofence deriver and the alerts hook, the webhook sender; a local
 *    HTTP receiver timestamps each delivery.
 *
 *   npm run bench:alerts [-- --seconds 20 --rate 20000 --fixes 20000]
 */
import { parseArgs } from 'node:util';
import { createTestDatabase } from '../../test/support/index.js';
import { measureFixes, scanEveryFence } from '../src/alerts/geofence-sql.js';
import { Rng } from '../src/simulator/rng.js';

const { values: args } = parseArgs({
  options: {
    fixes: { type: 'string', default: '20000' },
    'scan-fixes': { type: 'string', default: '1000' },
    fences: { type: 'string', default: '1000' },
  },
});
const FIXES = Number(args.fixes);
const SCAN_FIXES = Number(args['scan-fixes']);
const FENCES = Number(args.fences);
const MARGIN_M = 15;
const BATCH = 500;

// A 40 × 40 km area around Vilnius.
const LON0 = 25.0;
const LAT0 = 54.5;
const SPAN_LON = 0.62;
const SPAN_LAT = 0.36;

const db = await createTestDatabase();
try {
  const r = new Rng(12);
  const rand = () => r.next();
  const fences = Array.from({ length: FENCES }, (_, i) => ({
    name: `fence ${i + 1}`,
    center: { type: 'Point', coordinates: [LON0 + rand() * SPAN_LON, LAT0 + rand() * SPAN_LAT] },
    radius_m: 150 + Math.round(rand() * 450),
    speed_limit: i % 10 === 0 ? 30 : null,
    active: true,
  }));
  for (let i = 0; i < fences.length; i += 200) {
    await db.knex('geofences').insert(
      fences.slice(i, i + 200).map((f) => ({
        ...f,
        center: db.knex.raw('ST_SetSRID(ST_GeomFromGeoJSON(?), 4326)', [JSON.stringify(f.center)]),
      })),
    );
  }
  await db.knex.raw('ANALYZE geofences');
  const fixes = Array.from({ length: FIXES }, () => ({ lon: LON0 + rand() * SPAN_LON, lat: LAT0 + rand() * SPAN_LAT }));

  const timeIt = async (
    fn: (batch: typeof fixes) => Promise<{ distances: Map<number, Map<number, number>> }>,
    n: number,
  ) => {
    let hits = 0;
    const all: string[] = [];
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i += BATCH) {
      const batch = fixes.slice(i, Math.min(n, i + BATCH));
      const { distances } = await fn(batch);
      for (const [j, m] of distances) {
        hits += m.size;
        // Fences further than the margin count as "outside" either way; compare what matters.
        for (const [id, d] of m) if (d <= MARGIN_M + 1) all.push(`${i + j}:${id}:${d.toFixed(3)}`);
      }
    }
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return { usPerFix: (ms * 1000) / n, hits, all: all.sort() };
  };

  // Warm both paths once (plans, caches), then measure.
  await measureFixes(db.knex, fixes.slice(0, BATCH), MARGIN_M);
  await scanEveryFence(db.knex, fixes.slice(0, 50), MARGIN_M);
  const indexed = await timeIt((b) => measureFixes(db.knex, b, MARGIN_M), FIXES);
  const indexedSame = await timeIt((b) => measureFixes(db.knex, b, MARGIN_M), SCAN_FIXES);
  const scan = await timeIt((b) => scanEveryFence(db.knex, b, MARGIN_M), SCAN_FIXES);
  const same = JSON.stringify(indexedSame.all) === JSON.stringify(scan.all);

  console.log(
    `geofence check, ${FENCES} active geofences (circles 150–600 m), margin ${MARGIN_M} m, batches of ${BATCH}:`,
  );
  console.log(
    `  index-assisted (ours): ${indexed.usPerFix.toFixed(1)} µs/fix over ${FIXES} fixes (${indexed.hits} fences measured)`,
  );
  console.log(
    `  scan of every fence:   ${scan.usPerFix.toFixed(1)} µs/fix over ${SCAN_FIXES} fixes (ours on the same fixes: ${indexedSame.usPerFix.toFixed(1)} µs/fix)`,
  );
  console.log(
    `  ratio: ours is ${(scan.usPerFix / indexedSame.usPerFix).toFixed(1)}× cheaper per fix; same distances: ${same ? 'yes' : 'NO'}`,
  );
  if (!same) process.exitCode = 1;
} finally {
  await db.drop();
}
