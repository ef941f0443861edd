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
 *   Traffic: `devices` trackers write `rate` records/s in 100 ms ticks (fix time = wall time), one
 *   write per tick with up to `in-flight` (2, as the processor) writes under way at once.
 *   `rules` of them are probes parked on the edge of one fence each, hopping in and out every
 *   `hop` seconds, in turn (spread evenly over the in/out period; `--burst`: all at once, so
 *   `rules` alerts go to the one receiver together); the others drive straight lines across the area through the 1,000 fences. Each
 *   rule watches one probe's fence for entries. The derive and alerts roles run as the daemon runs
 *   them (`daemon/src/cli.ts derive` and `alerts`, child processes); the latency of an entry is from
 *   the commit of the fix that confirmed it to the webhook's arrival.
 *
 *   It prints the writer's write times and the CPU time per record written of the writer, the two
 *   roles and the PostgreSQL backends of each (/proc; CPU time does not grow with other load).
 *
 *   npm run bench:alerts [-- --seconds 20 --rate 20000 --devices 1000 --rules 100 --fixes 20000 --in-flight 2 --burst]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { createTestDatabase } from '../../test/support/index.js';
import { measureFixes, scanEveryFence } from '../src/alerts/geofence-sql.js';
import { alertingExtensions } from '../src/alerts/history-extensions.js';
import { outboxPolicy } from '../src/alerts/outbox.js';
import { loadConfig } from '../src/config.js';
import { DELIVERIES_NOTIFY_CHANNEL } from '../src/contract/alerts.js';
import type { HistoryExtensions } from '../src/history/hooks.js';
import { deriveDevice } from '../src/history/worker.js';
import type { PositionRow } from '../src/processor/rows.js';
import { PositionWriter } from '../src/processor/writer.js';
import { simulatedImei } from '../src/simulator/imei.js';
import { Rng } from '../src/simulator/rng.js';
import { type DaemonRole, startDaemonRole } from './daemon-role.js';
import { backendCpuMeter, cpuSeconds, machineCpuSeconds } from './proc.js';
import { benchRow, writeRows } from './rows.js';

const { values: args } = parseArgs({
  options: {
    fixes: { type: 'string', default: '20000' },
    'scan-fixes': { type: 'string', default: '1000' },
    fences: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    rate: { type: 'string', default: '20000' },
    devices: { type: 'string', default: '1000' },
    rules: { type: 'string', default: '100' },
    hop: { type: 'string', default: '4' },
    burst: { type: 'boolean', default: false },
    'in-flight': { type: 'string', default: '2' },
  },
});
const SECONDS = Number(args.seconds);
const RATE = Number(args.rate);
const DEVICES = Number(args.devices);
const RULES = Number(args.rules);
const HOP_MS = Number(args.hop) * 1000;
/** All probes hop at the same instant (a burst of `rules` alerts to one receiver) instead of in turn. */
const BURST = args.burst;
/** Writes in flight at once, each on its own connection: the processor's default (maxInFlight). */
const IN_FLIGHT = Number(args['in-flight']);
const TICK_MS = 100;
/** application_name of the bench writer's connections. */
const WRITER_APP = 'fleet-bench-writer';
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

  await latencyPhase(db.connection, fences);
  await derivationPeer();
} finally {
  await db.drop();
}

/**
 * What alerting adds to one derivation: the same devices' whole windows (the latency phase's
 * positions) derived by the history alone and with the geofence deriver + alerts hook, alternating,
 * in this process; the measurement cache is cold on the first round with alerting, warm after.
 */
async function derivationPeer(): Promise<void> {
  const sample = (
    await db.knex.raw<{ rows: Array<{ device: number; n: number }> }>(
      `SELECT device, count(*)::int AS n FROM positions GROUP BY device ORDER BY device DESC LIMIT 50`,
    )
  ).rows;
  if (sample.length === 0) return;
  const alerting = alertingExtensions(loadConfig({ DB_DATABASE: db.connection.database }));
  const timeRound = async (ext: HistoryExtensions) => {
    const t0 = performance.now();
    for (const { device } of sample) await deriveDevice(db.knex, device, null, ext);
    return (performance.now() - t0) / sample.length;
  };
  const history: number[] = [];
  const withAlerting: number[] = [];
  const cold = await timeRound(alerting);
  for (let round = 0; round < 2; round++) {
    history.push(await timeRound({}));
    withAlerting.push(await timeRound(alerting));
  }
  const avg = (l: number[]) => l.reduce((a, b) => a + b, 0) / l.length;
  const positions = Math.round(avg(sample.map((x) => x.n)));
  console.log(`one device's window re-derived (${sample.length} devices, ~${positions} positions each), same run:`);
  console.log(
    `  history alone ${avg(history).toFixed(1)} ms; with geofences + alert rules ${avg(withAlerting).toFixed(1)} ms (measurement cache warm), ${cold.toFixed(1)} ms (cold): alerting adds ${((avg(withAlerting) / avg(history) - 1) * 100).toFixed(0)} % warm`,
  );
}

function p(l: number[]): string {
  return `p50 ${Math.round(pct(l, 50))} ms, p99 ${Math.round(pct(l, 99))} ms`;
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function latencyPhase(
  connection: { host: string; port: number; user: string; password?: string; database: string },
  fences: Array<{ center: { coordinates: number[] }; radius_m: number }>,
): Promise<void> {
  const pool = new pg.Pool({ ...connection, max: 2 });
  // The writer on connections of its own, named so that its backend's CPU time can be read.
  const writerPool = new pg.Pool({ ...connection, max: IN_FLIGHT, application_name: WRITER_APP });
  const children: DaemonRole[] = [];
  const receiver = await startReceiver(connection);
  try {
    // Devices; the first RULES are the probes, probe i on the edge of fence i (ids follow insertion).
    const imeis = Array.from({ length: DEVICES }, (_, i) => simulatedImei(12, i));
    await pool.query(
      `INSERT INTO devices (imei, name, enabled) SELECT i, 'bench ' || n, true FROM unnest($1::text[]) WITH ORDINALITY AS u(i, n)`,
      [imeis],
    );
    const ids = new Map(
      (await pool.query<{ id: number; imei: string }>('SELECT id, imei FROM devices')).rows.map((x) => [x.imei, x.id]),
    );
    const probes = new Set(imeis.slice(0, RULES).map((i) => ids.get(i)!));
    const fenceIds = (await pool.query<{ id: number }>('SELECT id FROM geofences ORDER BY id')).rows.map((x) => x.id);
    const hook = `http://127.0.0.1:${receiver.port}/hook`;
    for (let i = 0; i < RULES; i++) {
      await pool.query(
        `INSERT INTO alert_rules (name, enabled, type, geofence, devices, min_duration_s, cooldown_s, notify_stale, webhook_url, webhook_secret)
         VALUES ($1, true, 'geofence_enter', $2, $3::json, 0, 0, false, $4, 'bench')`,
        [`probe ${i + 1}`, fenceIds[i], JSON.stringify([imeis[i]]), hook],
      );
    }

    const env = {
      ...process.env,
      DB_HOST: connection.host,
      DB_PORT: String(connection.port),
      DB_DATABASE: connection.database,
      DB_USER: connection.user,
      DB_PASSWORD: connection.password ?? '',
      LOG_LEVEL: 'info',
      LOG_STYLE: 'raw',
      HISTORY_METRICS_PORT: '0',
    };
    // Both roles up (their start-up lines) before the traffic starts.
    children.push(
      ...(await Promise.all([
        startDaemonRole('derive', env, 'history worker started'),
        startDaemonRole('alerts', env, 'alerts: sending webhooks'),
      ])),
    );

    // Where each device is at time t: probes hop between the fence's centre and 150 m outside its
    // edge; the others drive straight at 20–80 km/h from a random start.
    const r = new Rng(34);
    const m2deg = 1 / 111_320;
    const cosLat = Math.cos((54.7 * Math.PI) / 180);
    const movers = Array.from({ length: DEVICES }, () => ({
      lon: LON0 + r.next() * SPAN_LON,
      lat: LAT0 + r.next() * SPAN_LAT,
      heading: r.next() * 2 * Math.PI,
      speed: 20 + r.next() * 60,
    }));
    const start = Date.now();
    const where = (i: number, t: number) => {
      if (i < RULES) {
        const f = fences[i]!;
        const [lon, lat] = f.center.coordinates as [number, number];
        // In turn: probe i starts hopping i/RULES of an in-and-out period after probe 0 (outside
        // until then), so entries arrive steadily.
        const since = t - start - (BURST ? 0 : (i * 2 * HOP_MS) / RULES);
        const inside = since >= 0 && Math.floor(since / HOP_MS) % 2 === 1;
        return { lon: inside ? lon : lon + ((f.radius_m + 150) * m2deg) / cosLat, lat, speed: 10, inside };
      }
      const m = movers[i]!;
      const d = ((m.speed / 3.6) * (t - start)) / 1000;
      return {
        lon: m.lon + (Math.sin(m.heading) * d * m2deg) / cosLat,
        lat: m.lat + Math.cos(m.heading) * d * m2deg,
        speed: m.speed,
        inside: false,
      };
    };
    const ioText = JSON.stringify({ 239: 1, 240: 1 });
    const attrText = JSON.stringify({ ignition: true, movement: true });

    // Writes as the processor does: its configured method (default `direct`).
    const writer = new PositionWriter(
      writerPool,
      loadConfig({ PROCESS_WRITE_METHOD: process.env.PROCESS_WRITE_METHOD }).PROCESS_WRITE_METHOD,
    );
    const writeMs: number[] = [];
    let late = 0;
    const roleCpu = (role: DaemonRole) => (role.child.pid === undefined ? Number.NaN : cpuSeconds(role.child.pid));
    const [deriveRole, alertsRole] = children as [DaemonRole, DaemonRole];
    const backends = backendCpuMeter(
      (sql, params) => pool.query(sql, params),
      [WRITER_APP, 'fleet-derive', 'fleet-alerts'],
    );
    await backends.sample();
    const cpu0 = {
      own: process.cpuUsage(),
      derive: roleCpu(deriveRole),
      alerts: roleCpu(alertsRole),
      machine: machineCpuSeconds(),
    };
    let sampledAt = Date.now();
    let sampling = Promise.resolve();
    const inFlight = new Set<Promise<void>>();
    const committed = new Map<string, number>();
    // Entries the hysteresis must confirm: a probe's second consecutive fix inside its fence.
    const expected = new Set<string>();
    const insideRun = new Map<number, number>();
    // A visit: a probe's inside fixes from its entry on. When a later write commits before the one
    // ahead of it, the worker may confirm the entry at a later fix of the visit; that is still the
    // entry's one alert ("Re-timed, not new" in the alerts README), so alerts match by visit.
    const visitOf = new Map<string, string>();
    const visitNow = new Map<number, string>();
    const perTick = Math.max(1, Math.round((RATE * TICK_MS) / 1000));
    let written = 0;
    let next = start;
    let tick = start - TICK_MS;
    let k = 0;
    const end = start + SECONDS * 1000;
    while (Date.now() < end) {
      const now = Date.now();
      if (now < next) await new Promise((res) => setTimeout(res, next - now));
      else if (now - next >= TICK_MS) late++;
      next += TICK_MS;
      if (now - sampledAt >= 1000) {
        sampledAt = now;
        sampling = sampling.then(() => backends.sample());
      }
      // The tick's fix time is the wall clock (a writer falling behind does not slow the probes'
      // hopping), past the previous tick's last fix time.
      tick = Math.max(Date.now(), tick + Math.ceil(perTick / DEVICES));
      const rows: PositionRow[] = [];
      for (let n = 0; n < perTick; n++) {
        const i = k++ % DEVICES;
        // Fix times step by 1 ms per record of a device within a tick, so the natural key stays unique.
        const t = tick + Math.floor(n / DEVICES);
        const w = where(i, t);
        if (i < RULES) {
          const id = ids.get(imeis[i]!)!;
          const run = w.inside ? (insideRun.get(id) ?? 0) + 1 : 0;
          insideRun.set(id, run);
          if (run === 2) {
            expected.add(`${id}:${t}`);
            visitNow.set(id, `${id}:${t}`);
          }
          if (run >= 2) visitOf.set(`${id}:${t}`, visitNow.get(id)!);
        }
        rows.push(
          benchRow({
            imei: imeis[i]!,
            fixTime: t,
            receivedAt: Date.now(),
            latitude: w.lat,
            longitude: w.lon,
            speed: Math.round(w.speed),
            io: ioText,
            attributes: attrText,
          }),
        );
      }
      const w0 = performance.now();
      const h: Promise<void> = writeRows(writer, rows, ids)
        .then(() => {
          const at = Date.now();
          writeMs.push(performance.now() - w0);
          for (const row of rows) {
            const id = ids.get(row.imei)!;
            if (probes.has(id)) committed.set(`${id}:${row.fixTime}`, at);
          }
          written += rows.length;
        })
        .finally(() => inFlight.delete(h));
      inFlight.add(h);
      while (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    const elapsed = (Date.now() - start) / 1000;
    await sampling;
    await backends.sample();
    const cpu = {
      own: process.cpuUsage(cpu0.own),
      derive: roleCpu(deriveRole) - cpu0.derive,
      alerts: roleCpu(alertsRole) - cpu0.alerts,
      machine: machineCpuSeconds(),
      backends: backends.used(),
    };
    // The history worker's backlog when the traffic stops: what the latency waits behind.
    const backlog = (
      await pool.query<{ devices: number; oldest: number | null }>(
        `SELECT count(DISTINCT device)::int AS devices,
                (extract(epoch FROM now() - min(marked_at)) * 1000)::int AS oldest FROM history_dirty`,
      )
    ).rows[0]!;

    // Let what was committed reach the receiver (bounded), then compare.
    const alertsNow = async () =>
      Number((await pool.query(`SELECT count(*)::int AS n FROM alerts`)).rows[0].n as number);
    const settleBy = Date.now() + 120_000;
    let alerts = await alertsNow();
    let received = await receiver.report();
    while (Date.now() < settleBy) {
      await new Promise((res) => setTimeout(res, 500));
      const marks = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM history_dirty');
      alerts = await alertsNow();
      received = await receiver.report();
      if (marks.rows[0]!.n === 0 && received.requests >= alerts) break;
    }
    const arrivals = new Map(received.arrivals);
    const notified = received.notified;
    const requests = received.requests;
    // Where the time goes: alerts.created_at is the deriving transaction's start (now()); its
    // commit is the first NOTIFY that arrived after it; the sender claimed the delivery at
    // next_attempt_at − lease (delivered rows keep the claim's lease).
    const leaseMs = outboxPolicy(loadConfig({})).leaseMs;
    const stages = new Map(
      (
        await pool.query<{ device: number; t: number; c: number; claimed: number | null }>(
          `SELECT a.device, (extract(epoch FROM a.event_time) * 1000)::float8 AS t,
                  (extract(epoch FROM a.created_at) * 1000)::float8 AS c,
                  (extract(epoch FROM max(d.next_attempt_at)) * 1000)::float8 - $1 AS claimed
             FROM alerts a LEFT JOIN alert_deliveries d ON d.alert = a.id AND d.status = 'delivered'
            GROUP BY a.id`,
          [leaseMs],
        )
      ).rows.map((x) => [`${x.device}:${Math.round(x.t)}`, x]),
    );
    const latencies: number[] = [];
    const waits: number[] = [];
    const deriving: number[] = [];
    const toClaim: number[] = [];
    const sending: number[] = [];
    const rest: number[] = [];
    for (const [key, at] of arrivals) {
      const c = committed.get(key);
      if (c === undefined) continue;
      latencies.push(at - c);
      const s = stages.get(key);
      if (s === undefined) continue;
      waits.push(s.c - c);
      rest.push(at - s.c);
      const commit = notified.find((n) => n >= s.c);
      if (commit !== undefined && commit <= at) deriving.push(commit - s.c);
      if (commit !== undefined && s.claimed !== null && commit <= at) toClaim.push(s.claimed - commit);
      if (s.claimed !== null) sending.push(at - s.claimed);
    }
    for (const l of [latencies, waits, deriving, toClaim, sending, rest]) l.sort((a, b) => a - b);
    const entryOf = (key: string) => visitOf.get(key) ?? key;
    const arrivedEntries = new Set([...arrivals.keys()].map(entryOf));
    const missing = [...expected].filter((key) => !arrivedEntries.has(key)).length;
    // Alerts for no entry the hysteresis had to confirm, or a second one for an entry's visit.
    const seenEntries = new Set<string>();
    const unexpected = [...stages.keys()].filter((key) => {
      const entry = entryOf(key);
      if (!expected.has(entry) || seenEntries.has(entry)) return true;
      seenEntries.add(entry);
      return false;
    });
    const retimed = [...stages.keys()].filter((key) => entryOf(key) !== key).length;
    const delivered = Number(
      (await pool.query(`SELECT count(*)::int AS n FROM alert_deliveries WHERE status = 'delivered'`)).rows[0].n,
    );
    console.log(
      `position commit → webhook received, ${DEVICES} devices (${RULES} probes hopping in/out every ${HOP_MS / 1000} s, ${BURST ? 'all at once' : 'in turn'}), ${fenceIds.length} geofences, ${RULES} rules, derive + alerts roles as child processes:`,
    );
    console.log(
      `  written: ${written} records in ${elapsed.toFixed(1)} s = ${Math.round(written / elapsed)} records/s (target ${RATE})`,
    );
    writeMs.sort((a, b) => a - b);
    const perRecord = (s: number | undefined) => ((s ?? Number.NaN) * 1e6) / written;
    const us = (s: number | undefined) => perRecord(s).toFixed(1);
    console.log(
      `  writer: ${writeMs.length} writes of ${perTick} records (one per ${TICK_MS} ms tick, up to ${IN_FLIGHT} in flight), each ${p(writeMs)}, ${late} ticks started a tick or more late`,
    );
    console.log(
      `  CPU µs per record written: bench process (rows, COPY, receiver) ${us((cpu.own.user + cpu.own.system) / 1e6)} + writer's backend ${us(cpu.backends.get(WRITER_APP))}; derive role ${us(cpu.derive)} + its backends ${us(cpu.backends.get('fleet-derive'))}; alerts role ${us(cpu.alerts)} + its backends ${us(cpu.backends.get('fleet-alerts'))}; machine busy ${(((cpu.machine.busy - cpu0.machine.busy) / (cpu.machine.total - cpu0.machine.total)) * 100).toFixed(0)} % of ${cpus().length} cores (everything on it)`,
    );
    console.log(
      `  history worker backlog when writing stopped: ${backlog.devices} devices marked, oldest mark ${backlog.oldest ?? 0} ms old`,
    );
    console.log(
      `  entries expected: ${expected.size}, alerts: ${alerts}, webhooks received: ${requests} (${delivered} deliveries marked delivered), latencies measured: ${latencies.length}, not received within 120 s after writing stopped: ${missing}, alerts at a later fix of their entry's visit (a later write committed first): ${retimed}, alerts for no expected entry or a second one for a visit: ${unexpected.length}${unexpected.length > 0 ? ` (device:fix time ${unexpected.slice(0, 5).join(', ')})` : ''}`,
    );
    console.log(
      `  of which commit → its derivation starts: ${p(waits)}; derivation start → webhook received: ${p(rest)}`,
    );
    console.log(
      `  derivation start → its commit (NOTIFY here): ${p(deriving)}; → sender's claim: ${p(toClaim)}; claim → webhook received: ${p(sending)}`,
    );
    console.log(
      `  commit → webhook: p50 ${pct(latencies, 50)} ms, p99 ${pct(latencies, 99)} ms, max ${latencies.at(-1) ?? Number.NaN} ms (target p99 < 1000 ms: ${pct(latencies, 99) < 1000 && missing === 0 && unexpected.length === 0 ? 'met' : 'NOT met'})`,
    );
  } finally {
    await Promise.all(children.map((c) => c.stop()));
    await receiver.close();
    await pool.end();
    await writerPool.end();
  }
}

/**
 * The webhook receiver and a LISTEN on the deliveries channel, in a thread of their own, so that
 * their timestamps (a webhook's arrival, a deriving transaction's commit) are not held up by this
 * thread building and writing rows.
 */
async function startReceiver(connection: object) {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const http = require('node:http');
    const pg = require('pg');
    const arrivals = [];
    const notified = [];
    let requests = 0;
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const at = Date.now();
        requests++;
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        arrivals.push([body.device.id + ':' + Date.parse(body.event.time), at]);
        res.writeHead(200).end('ok');
      });
    });
    const client = new pg.Client(workerData.connection);
    client.on('notification', () => notified.push(Date.now()));
    parentPort.on('message', async (m) => {
      if (m === 'report') parentPort.postMessage({ arrivals, notified, requests });
      else if (m === 'close') {
        server.close();
        await client.end();
        parentPort.close();
      }
    });
    client.connect().then(() => client.query('LISTEN ' + workerData.channel)).then(() =>
      server.listen(0, '127.0.0.1', () => parentPort.postMessage({ port: server.address().port })));
  `;
  const worker = new Worker(code, { eval: true, workerData: { connection, channel: DELIVERIES_NOTIFY_CHANNEL } });
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      worker.once('error', fail);
      worker.once('message', (m: T) => {
        worker.off('error', fail);
        resolve(m);
      });
    });
  const { port } = await next<{ port: number }>();
  return {
    port,
    report: async () => {
      const r = next<{ arrivals: [string, number][]; notified: number[]; requests: number }>();
      worker.postMessage('report');
      return r;
    },
    close: async () => {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage('close');
      await exited;
    },
  };
}
