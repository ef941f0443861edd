/**
 * bench:scale, storage: positions partitioned by month (directus/sql/positions-partitions.sql).
 *
 *  1. Queries at two table sizes, same run: one fleet (100 devices, each reporting every ~158 s)
 *     whose positions cover a year — 20 million rows, 13 monthly partitions — and the same fleet
 *     after its first 18 days — 1 million rows. A device's one-day track (the fleet endpoint's
 *     code, deviceTrack, about 550 positions either way), a device's latest positions (the query
 *     the device page's "Latest positions" makes through Directus: device = ? ORDER BY fix_time
 *     DESC LIMIT 5) and the fleet map's latest positions (latestPositionsGeoJson), random devices
 *     and days, the two sizes alternated → p50/p99 per size and the large/small ratios (target ≤ 1.5).
 *  2. The processor's writer (PositionWriter, COPY method, 500-row batches from 1000 devices, two
 *     batches in flight as the processor runs them) into the partitioned table and into a plain
 *     table with the same columns, key and indexes, in alternated rounds → rows/s and the ratio of
 *     the medians (target ≥ 0.9).
 *
 * Rows of phase 1 are generated in SQL (generate_series), then indexed and analysed.
 */
import type { Knex } from 'knex';
import pg from 'pg';
import { latestPositionsGeoJson } from '../../extensions/src/shared/telematics/positions.js';
import { deviceTrack } from '../../extensions/src/shared/telematics/track.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/index.js';
import { PositionWriter } from '../src/processor/writer.js';
import { simulatedImei } from '../src/simulator/imei.js';
import { benchRow, writeRows } from './rows.js';

export interface StorageScaleOptions {
  largeRows: number;
  smallRows: number;
  devices: number;
  queries: number;
  writeRounds: number;
  rowsPerRound: number;
  out: (line?: string) => void;
}

const DAY_MS = 86_400_000;
const YEAR_MS = 365 * DAY_MS;

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

/** The fleet's positions from `startMs` for `rows` rows: every device every `stepMs`, staggered. */
async function loadFleet(db: TestDatabase, o: { rows: number; devices: number; startMs: number; stepMs: number }) {
  const k = db.knex;
  await k.raw(`INSERT INTO devices (imei, name, enabled) SELECT x, x, true FROM unnest(?::text[]) AS x`, [
    Array.from({ length: o.devices }, (_, i) => simulatedImei(9, i)),
  ]);
  const ids = (await k('devices').orderBy('id').pluck('id')) as number[];
  // Bulk load: the foreign key (a per-row check) and the secondary index come back afterwards.
  const fk = (
    await k.raw(
      `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'positions'::regclass AND contype = 'f'`,
    )
  ).rows as { conname: string; def: string }[];
  for (const f of fk) await k.raw(`ALTER TABLE positions DROP CONSTRAINT ${f.conname}`);
  await k.raw('DROP INDEX IF EXISTS positions_device_fix_time_event');
  const endMs = o.startMs + Math.ceil(o.rows / o.devices) * o.stepMs;
  for (
    let m = new Date(o.startMs);
    m.getTime() < endMs;
    m = new Date(Date.UTC(m.getUTCFullYear(), m.getUTCMonth() + 1))
  ) {
    await k.raw('SELECT positions_create_partition(?::timestamp)', [m.toISOString().slice(0, 10)]);
  }
  const steps = Math.ceil(o.rows / o.devices);
  const chunk = Math.ceil(1_000_000 / o.devices);
  for (let s0 = 0; s0 < steps; s0 += chunk) {
    await k.raw(
      `INSERT INTO positions (id, device, fix_time, received_at, location, altitude, heading, speed, satellites, priority,
                              event_io_id, io, attributes, flags)
       SELECT position_id(d, us, 0), d, t, t + interval '1 second',
              ST_SetSRID(ST_MakePoint(25 + (s % 500) * 0.0002 + d * 0.01, 54 + (s % 300) * 0.0001), 4326),
              100, (s * 7) % 360, (s % 90), 12, 0, 0, '{"239":1,"240":1,"66":24079}'::json,
              '{"ignition":true,"movement":true,"externalVoltage":24.079}'::json, '[]'::json
         FROM generate_series(?::int, ?::int) AS s, unnest(?::int[]) WITH ORDINALITY AS dv(d, n),
              LATERAL (SELECT (?::bigint + s::bigint * ?::bigint + (n - 1) * ?::bigint) * 1000 AS us) x,
              LATERAL (SELECT 'epoch'::timestamptz + us * interval '1 microsecond' AS t) y
        WHERE s::bigint * ?::bigint + n <= ?::bigint`,
      [
        s0,
        Math.min(steps, s0 + chunk) - 1,
        ids,
        o.startMs,
        o.stepMs,
        Math.floor(o.stepMs / o.devices),
        o.devices,
        o.rows,
      ],
    );
  }
  await k.raw("SET maintenance_work_mem = '256MB'");
  await k.raw('CREATE INDEX positions_device_fix_time_event ON positions (device, fix_time, event_io_id)');
  for (const f of fk) await k.raw(`ALTER TABLE positions ADD CONSTRAINT ${f.conname} ${f.def}`);
  // the latest state the processor keeps on devices, which the fleet map reads
  await k.raw(`UPDATE devices SET online = true, last_seen_at = now(), last_fix_at = now(), last_speed = 40,
                 last_location = ST_SetSRID(ST_MakePoint(25 + id * 0.01, 54), 4326), last_attributes = '{"ignition":true}'`);
  await k.raw('VACUUM ANALYZE positions');
  const n = Number((await k.raw('SELECT count(*)::bigint AS n FROM positions')).rows[0].n);
  const parts = Number(
    (await k.raw(`SELECT count(*)::int AS n FROM pg_inherits WHERE inhparent = 'positions'::regclass`)).rows[0].n,
  );
  return { ids, rows: n, partitions: parts, endMs };
}

type Sizes = { small: number[]; large: number[] };

const millions = (n: number) => `${n / 1e6}M`;

function summary(name: string, t: Sizes, o: StorageScaleOptions): boolean {
  const s = [...t.small].sort((a, b) => a - b);
  const l = [...t.large].sort((a, b) => a - b);
  const r50 = percentile(l, 50) / percentile(s, 50);
  const r99 = percentile(l, 99) / percentile(s, 99);
  const ok = r50 <= 1.5 && r99 <= 1.5;
  const f = (x: number) => x.toFixed(2);
  o.out(
    `  ${name}: ${millions(o.smallRows)} rows p50 ${f(percentile(s, 50))} ms p99 ${f(percentile(s, 99))} ms; ${millions(o.largeRows)} rows p50 ${f(percentile(l, 50))} ms p99 ${f(percentile(l, 99))} ms → ratio p50 ${f(r50)}, p99 ${f(r99)} (target ≤ 1.5) ${verdict(ok)}`,
  );
  return ok;
}

async function queries(o: StorageScaleOptions): Promise<boolean> {
  const out = o.out;
  const stepMs = Math.round((YEAR_MS * o.devices) / o.largeRows);
  const startMs = Date.UTC(new Date().getUTCFullYear() - 1, new Date().getUTCMonth(), 1);
  const [small, large] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  try {
    const t0 = performance.now();
    const s = await loadFleet(small, { rows: o.smallRows, devices: o.devices, startMs, stepMs });
    const t1 = performance.now();
    const l = await loadFleet(large, { rows: o.largeRows, devices: o.devices, startMs, stepMs });
    const t2 = performance.now();
    out(
      `  loaded ${s.rows} rows in ${s.partitions} partitions (${((t1 - t0) / 1000).toFixed(0)} s) and ${l.rows} rows in ${l.partitions} partitions (${((t2 - t1) / 1000).toFixed(0)} s); ${o.devices} devices, one position each every ${(stepMs / 1000).toFixed(0)} s`,
    );
    const track: Sizes = { small: [], large: [] };
    const latest: Sizes = { small: [], large: [] };
    const fleet: Sizes = { small: [], large: [] };
    let points = 0;
    const timed = async (f: () => Promise<unknown>) => {
      const a = performance.now();
      await f();
      return performance.now() - a;
    };
    const run = async (db: Knex, ids: number[], endMs: number, into: 'small' | 'large', i: number) => {
      const device = ids[(i * 7919) % ids.length]!;
      // a whole day inside the data (the last full day is as good as any other)
      const days = Math.floor((endMs - startMs) / DAY_MS) - 1;
      const from = startMs + ((i * 104_729) % days) * DAY_MS;
      let n = 0;
      track[into].push(
        await timed(async () => {
          n = (await deviceTrack(db, { device, fromMs: from, toMs: from + DAY_MS - 1, samples: 1000 })).meta.positions;
        }),
      );
      if (into === 'large') points += n;
      latest[into].push(
        await timed(() =>
          db.raw(
            `SELECT "positions"."id", "positions"."fix_time", "positions"."speed", "positions"."location" FROM "positions"
              WHERE "positions"."device" = ? ORDER BY "positions"."fix_time" DESC LIMIT 5`,
            [device],
          ),
        ),
      );
      fleet[into].push(await timed(() => latestPositionsGeoJson(db)));
    };
    // warm-up (caches, plans), then measured, the two sizes alternated
    for (let i = 0; i < 20; i++) {
      await run(small.knex, s.ids, s.endMs, 'small', i);
      await run(large.knex, l.ids, l.endMs, 'large', i);
    }
    for (const x of [track, latest, fleet]) {
      x.small.length = 0;
      x.large.length = 0;
    }
    points = 0;
    for (let i = 0; i < o.queries; i++) {
      await run(small.knex, s.ids, s.endMs, 'small', i + 100);
      await run(large.knex, l.ids, l.endMs, 'large', i + 100);
    }
    out(
      `  ${o.queries} queries of each kind per size; a one-day track holds ${Math.round(points / o.queries)} positions`,
    );
    const a = summary("a device's one-day track (deviceTrack)", track, o);
    // What the device page's "Latest positions" asks Directus for: no time bound, so every monthly
    // partition's index is probed (and planned) — it grows with the number of partitions kept.
    const b = summary(
      "a device's latest 5 positions (Directus's query: device = ? ORDER BY fix_time DESC LIMIT 5)",
      latest,
      o,
    );
    // The fleet map's latest positions (/fleet/positions) read the state the processor keeps on
    // devices, not positions: unaffected by the table's size by design.
    const c = summary("the fleet map's latest positions (/fleet/positions, from devices)", fleet, o);
    return a && b && c;
  } finally {
    await Promise.all([small.drop(), large.drop()]);
  }
}

/** The partitioned positions table turned into a plain one with the same columns, key and indexes. */
async function plainPositions(db: TestDatabase) {
  await db.knex.raw(`
    CREATE TABLE positions_plain (LIKE positions INCLUDING ALL);
    DO $$
    DECLARE f record;
    BEGIN
      FOR f IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
                WHERE conrelid = 'positions'::regclass AND contype = 'f' LOOP
        EXECUTE format('ALTER TABLE positions_plain ADD CONSTRAINT %I_plain %s', f.conname, f.def);
      END LOOP;
    END $$;
    DROP TABLE positions;
    ALTER TABLE positions_plain RENAME TO positions;
  `);
}

async function writes(o: StorageScaleOptions): Promise<boolean> {
  const out = o.out;
  const [part, plain] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  const pools: pg.Pool[] = [];
  try {
    await plainPositions(plain);
    const devices = 1000;
    const imeis = Array.from({ length: devices }, (_, i) => simulatedImei(8, i));
    const setups = await Promise.all(
      [part, plain].map(async (db) => {
        await db.knex.raw(`INSERT INTO devices (imei, name, enabled) SELECT x, x, true FROM unnest(?::text[]) AS x`, [
          imeis,
        ]);
        const rows = (await db.knex('devices').select('id', 'imei')) as { id: number; imei: string }[];
        const pool = new pg.Pool({ ...db.connection, max: 2 });
        pools.push(pool);
        return { pool, writer: new PositionWriter(pool, 'copy'), ids: new Map(rows.map((r) => [r.imei, r.id])) };
      }),
    );
    const base = Date.now() - 3 * DAY_MS;
    const batch = 500;
    const round = async (w: (typeof setups)[number], r: number) => {
      const batches = Math.ceil(o.rowsPerRound / batch);
      let next = 0;
      const start = performance.now();
      const worker = async () => {
        for (let b = next++; b < batches; b = next++) {
          const rows = Array.from({ length: batch }, (_, j) => {
            const i = b * batch + j;
            const t = base + r * 10_000_000 + Math.floor(i / devices) * 1000;
            return benchRow({
              imei: imeis[i % devices]!,
              fixTime: t,
              receivedAt: t + 300,
              latitude: 54 + (i % 97) * 0.0001,
              longitude: 25 + (i % 89) * 0.0001,
              speed: 40,
              io: '{"239":1,"240":1,"66":24079}',
              attributes: '{"ignition":true,"movement":true,"externalVoltage":24.079}',
            });
          });
          await writeRows(w.writer, rows, w.ids);
        }
      };
      await Promise.all([worker(), worker()]);
      return (batches * batch) / ((performance.now() - start) / 1000);
    };
    // Short rounds, alternated and in swapped order each time (ABBA), compared by their medians:
    // on a shared machine the load drifts during the run, and it must weigh on both sides alike.
    const rates: { part: number[]; plain: number[] } = { part: [], plain: [] };
    await round(setups[0]!, 99);
    await round(setups[1]!, 99); // warm-up
    for (let r = 0; r < o.writeRounds; r++) {
      if (r % 2 === 0) {
        rates.part.push(await round(setups[0]!, r));
        rates.plain.push(await round(setups[1]!, r));
      } else {
        rates.plain.push(await round(setups[1]!, r));
        rates.part.push(await round(setups[0]!, r));
      }
    }
    const median = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        50,
      );
    const ratio = median(rates.part) / median(rates.plain);
    const f = (xs: number[]) => xs.map((x) => Math.round(x)).join(', ');
    out(
      `  processor's writer (COPY, ${batch}-row batches, 2 in flight, ${o.writeRounds} rounds of ${o.rowsPerRound} rows each side): partitioned ${f(rates.part)} rows/s (median ${Math.round(median(rates.part))}); plain ${f(rates.plain)} rows/s (median ${Math.round(median(rates.plain))}) → ratio ${ratio.toFixed(2)} (target ≥ 0.9) ${verdict(ratio >= 0.9)}`,
    );
    return ratio >= 0.9;
  } finally {
    await Promise.all(pools.map((p) => p.end()));
    await Promise.all([part.drop(), plain.drop()]);
  }
}

/** Runs the storage part of bench:scale (both halves unless told); true when every target is met. */
export async function storageScale(o: StorageScaleOptions, only?: 'writes' | 'queries'): Promise<boolean> {
  o.out(`storage: positions partitioned by month`);
  const w = only === 'queries' || (await writes(o));
  const q = only === 'writes' || (await queries(o));
  return w && q;
}
