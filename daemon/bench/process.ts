/**
 * `npm run bench:process [-- --entries 30000 --rate 20000 --seconds 15 --quick]`
 *
 *  1. throughput: a stream pre-filled with `entries` frames of 10 records (1000 devices), one
 *     processor started on it → rows/s into `positions` with its real indexes, unique key and
 *     PostGIS column (a fresh clone of the Directus schema), once per write method (unnest
 *     parameters, COPY into a staging table, COPY straight into positions), with the CPU time per row of the processor and of its
 *     PostgreSQL backends, and the processor's own work per row without I/O (decode, rows, jump
 *     rule, COPY data), step by step. Peers in the same run: the bare insert ceiling (pre-built
 *     5000-row unnest inserts, 2 connections, into the same table: same partition, primary key,
 *     device index, foreign key and ON CONFLICT; constant columns, no flags, no device update, no
 *     history mark, no Redis, no decode), with its backends' CPU per row; as information, the same
 *     bare rows as 5000-row binary COPYs into positions (the direct method's ceiling); the real writer alone
 *     with each method on 1, 2 and 4 connections, with its backends' CPU per row; one INSERT per
 *     row (autocommit), the approach the writer replaces. All these rows' fix times are weeks old,
 *     so every one of them lands in the default partition.
 *  2. latency: a producer adds frames at a steady `rate` records/s while the processor runs →
 *     p50/p99/max from the frame's receive time (its XADD) to the commit of its rows.
 *  3. history derivation on and off in the same run, on drives with stops (200 s parked, 100 s
 *     driving per device, in fix time): the processor's throughput from the same pre-filled stream
 *     with HISTORY_ENABLED=false (no marks, no worker) and =true with the history worker deriving
 *     alongside as its own `derive` process (as deployed, at its HISTORY_NICE), twice each, alternated (ratio of the means, target ≥ 0.8), each run with the CPU time per row
 *     of the processor, the worker and the PostgreSQL backends of each (CPU time does not grow when
 *     other work takes the cores; read from /proc, so PostgreSQL on this host); then at a steady `rate` with both running, p50/p99
 *     from a position's commit (its history mark) to the commit of its trips/stops/events.
 *
 * PROCESS_WRITE_METHOD=unnest|copy picks the method of the latency phase (default: the daemon's);
 * HISTORY_CONCURRENCY the worker's batches at once in phase 3, HISTORY_YIELD_BEHIND_MS and
 * HISTORY_YIELD_MAX_MS when it yields to a processor behind its telemetry (default: the daemon's;
 * HISTORY_YIELD_BEHIND_MS=0 derives alongside the burst as before).
 *
 * Uses the local PostgreSQL (a temporary database) and Redis (a random key prefix); both are
 * removed at the end. Figures are noisy on a shared 2-core machine: compare the ratios.
 */
import { cpus } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { createTestDatabase, createTestRedis, freePort } from '../../test/support/index.js';
import { loadConfig } from '../src/config.js';
import { encodeTelemetryEntry, GROUPS, redisKeys } from '../src/contract/index.js';
import { runDerive } from '../src/history/main.js';
import { createLogger } from '../src/observability/logger.js';
import { triage } from '../src/processor/batch.js';
import { copyBinary, copyPositions, idEncoder } from '../src/processor/copy-binary.js';
import { protocolIoViews } from '../src/processor/decode.js';
import { type RunningProcessor, runProcess } from '../src/processor/main.js';
import { entriesToRows, flagJumps, latestPerDevice } from '../src/processor/rows.js';
import { POSITIONS_COPY, PositionWriter, WRITE_METHODS, type WriteMethod } from '../src/processor/writer.js';
import { type AvlRecord, CODEC_8E, encodeAvlFrame } from '../src/protocol/index.js';
import { simulatedImei } from '../src/simulator/imei.js';
import { startDaemonRole } from './daemon-role.js';
import { backendCpuMeter, cpuSeconds } from './proc.js';
import { benchRow, writeRows } from './rows.js';

const { values: args } = parseArgs({
  options: {
    entries: { type: 'string' },
    rate: { type: 'string', default: '20000' },
    seconds: { type: 'string' },
    quick: { type: 'boolean' },
  },
});
const ENTRIES = Number(args.entries ?? (args.quick ? 3000 : 30_000));
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds ?? (args.quick ? 5 : 15));
const DEVICES = 1000;
/** The method the latency phase runs with (the daemon's default unless PROCESS_WRITE_METHOD is set). */
const defaultMethod = loadConfig({ PROCESS_WRITE_METHOD: process.env.PROCESS_WRITE_METHOD }).PROCESS_WRITE_METHOD;
const RECORDS = 10;

const out = (s = '') => process.stdout.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `drivePark`: of every 30 frames, 0–19 are parked (ignition off, no movement), 20–29 drive. */
function records(device: number, step: number, base: number, drivePark = false): AvlRecord[] {
  const parked = drivePark && step % 30 < 20;
  const driven = drivePark ? Math.max(0, (step % 30) - 20) + 10 * Math.floor(step / 30) : step;
  return Array.from({ length: RECORDS }, (_, j) => ({
    timestamp: base + step * RECORDS * 1000 + j * 1000,
    priority: 0,
    longitude: 25 + device * 0.001 + driven * 0.0001,
    latitude: 54 + (parked ? 0 : j * 0.0001),
    altitude: 100 + j,
    angle: (step * 7) % 360,
    satellites: 12,
    speed: parked ? 0 : 40 + j,
    eventIoId: 0,
    generationType: null,
    io: {
      ids: [239, 240, 21, 66, 67, 16, 69],
      // total odometer (m): 15 m per driven second with stops, so a drive is a trip by its odometer too
      values: [
        parked ? 0 : 1,
        parked ? 0 : 1,
        4,
        24_079,
        4_101,
        123_456 + (drivePark ? (driven * 10 + (parked ? 0 : j)) * 15 : step),
        1,
      ],
    },
  }));
}

function entry(imeis: string[], k: number, base: number, receivedAt: number, drivePark = false): (string | Buffer)[] {
  const device = k % DEVICES;
  const recs = records(device, Math.floor(k / DEVICES), base, drivePark);
  return encodeTelemetryEntry({
    imei: imeis[device]!,
    codec: CODEC_8E,
    transport: 'tcp',
    instance: 'bench',
    receivedAt,
    records: RECORDS,
    frame: encodeAvlFrame(CODEC_8E, recs),
  });
}

/** CPU time (ms) of a process, or null where it cannot be read (gone, or not on this host). */
function procCpuMs(pid: number): number | null {
  try {
    return cpuSeconds(pid) * 1000;
  } catch {
    return null;
  }
}

/**
 * CPU used while the processor runs: this process (the processor runs in it), the worker process,
 * and the PostgreSQL backends of each (by application_name, read from /proc: PostgreSQL on this
 * host). CPU time, unlike wall time, does not grow when other work on the machine takes the cores.
 */
function cpuMeter(pool: pg.Pool, workerPid: number | undefined) {
  const own = process.cpuUsage();
  const worker0 = workerPid === undefined ? null : procCpuMs(workerPid);
  const backends = backendCpuMeter((sql, params) => pool.query(sql, params), ['fleet-processor', 'fleet-derive']);
  return {
    sample: () => backends.sample(),
    async done() {
      await backends.sample();
      const u = process.cpuUsage(own);
      const used = backends.used();
      const sum = (app: string) => (backends.unreadable ? null : (used.get(app) ?? 0) * 1000);
      const w = workerPid === undefined || worker0 === null ? null : procCpuMs(workerPid);
      return {
        processor: (u.user + u.system) / 1000,
        processorBackends: sum('fleet-processor'),
        worker: w === null || worker0 === null ? null : w - worker0,
        workerBackends: sum('fleet-derive'),
      };
    },
  };
}

const mean = (xs: number[] = []) => xs.reduce((a, b) => a + b, 0) / xs.length;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  out(`bench:process — ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  const [db, r] = await Promise.all([createTestDatabase(), createTestRedis()]);
  const pool = new pg.Pool({ ...db.connection, max: 2 });
  const running: RunningProcessor[] = [];
  try {
    const imeis = Array.from({ length: DEVICES }, (_, i) => simulatedImei(7, i));
    await pool.query(`INSERT INTO devices (imei, name, enabled) SELECT x, x, true FROM unnest($1::text[]) AS x`, [
      imeis,
    ]);
    const logger = createLogger('warn');
    const configEnv = (prefix: string, method: WriteMethod = defaultMethod, history = true) => ({
      PROCESS_WRITE_METHOD: method,
      HISTORY_ENABLED: String(history),
      HISTORY_CONCURRENCY: process.env.HISTORY_CONCURRENCY,
      HISTORY_YIELD_BEHIND_MS: process.env.HISTORY_YIELD_BEHIND_MS,
      HISTORY_YIELD_MAX_MS: process.env.HISTORY_YIELD_MAX_MS,
      HISTORY_METRICS_PORT: '0',
      INSTANCE_ID: `bench-${prefix.length}`,
      REDIS: r.url,
      FLEET_REDIS_PREFIX: prefix,
      DB_HOST: db.connection.host,
      DB_PORT: String(db.connection.port),
      DB_DATABASE: db.connection.database,
      DB_USER: db.connection.user,
      DB_PASSWORD: db.connection.password ?? '',
      PROCESS_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
    });
    const config = (prefix: string, method: WriteMethod = defaultMethod, history = true) =>
      loadConfig(configEnv(prefix, method, history));
    const countRows = async () => Number((await pool.query('SELECT count(*)::int AS n FROM positions')).rows[0].n);
    const drained = async (stream: string) => {
      const groups = (await r.redis.xinfo('GROUPS', stream)) as unknown[][];
      const g = groups.find((x) => x[1] === GROUPS.processors);
      const f = g ? Object.fromEntries([0, 2, 4, 6, 8, 10].map((i) => [String(g[i]), g[i + 1]])) : undefined;
      return f !== undefined && Number(f.pending) === 0 && Number(f.lag) === 0;
    };

    /** Adds ENTRIES frames to `stream` at once. */
    const prefill = async (stream: string, base: number, drivePark = false) => {
      for (let k = 0; k < ENTRIES; k += 1000) {
        const pipe = r.redis.pipeline();
        for (let i = k; i < Math.min(ENTRIES, k + 1000); i++)
          pipe.xadd(stream, '*', ...entry(imeis, i, base, Date.now(), drivePark));
        await pipe.exec();
      }
    };
    /** Adds frames to `stream` at RATE records/s for SECONDS; `sentAt` gets each entry id's send time. */
    const produce = async (stream: string, base: number, sentAt: Map<string, number>, drivePark = false) => {
      const perTick = RATE / RECORDS / 100; // 10 ms ticks
      let k = 0;
      let owed = 0;
      const start = performance.now();
      let next = start;
      while (performance.now() - start < SECONDS * 1000) {
        owed += perTick;
        const n = Math.floor(owed);
        owed -= n;
        if (n > 0) {
          const pipe = r.redis.pipeline();
          const at = performance.now();
          for (let i = 0; i < n; i++, k++) pipe.xadd(stream, '*', ...entry(imeis, k, base, Date.now(), drivePark));
          const res = (await pipe.exec()) ?? [];
          for (const [, id] of res) sentAt.set(String(id), at);
        }
        next += 10;
        const wait = next - performance.now();
        if (wait > 0) await sleep(wait);
      }
      return { records: k * RECORDS, seconds: (performance.now() - start) / 1000 };
    };

    // --- 1. throughput from a pre-filled stream, once per write method ----------------------------
    const base = Date.now() - 30 * 24 * 3_600_000;
    out(
      `\n1. throughput: ${ENTRIES} entries × ${RECORDS} records pre-filled, one processor, positions emptied before each run`,
    );
    const processorRates = new Map<WriteMethod, number>();
    /** CPU µs per row: the processor, its PostgreSQL backends. */
    const processorCpu = new Map<WriteMethod, [number, number]>();
    for (const method of WRITE_METHODS) {
      const p1 = `${r.prefix}thr-${method}:`;
      const k1 = redisKeys(p1);
      await pool.query('TRUNCATE positions, history_dirty');
      await prefill(k1.telemetryAvl, base);
      const cpu = cpuMeter(pool, undefined);
      await cpu.sample();
      const t0 = performance.now();
      const proc = await runProcess(config(p1, method), logger);
      running.push(proc);
      for (let n = 0; !(await drained(k1.telemetryAvl)); n++) {
        if (n % 10 === 0) await cpu.sample();
        await sleep(20);
      }
      const elapsed = (performance.now() - t0) / 1000;
      const used = await cpu.done();
      const rows1 = await countRows();
      await proc.stop();
      running.pop();
      processorRates.set(method, rows1 / elapsed);
      processorCpu.set(
        method,
        [used.processor, used.processorBackends].map((ms) => (ms === null ? Number.NaN : (ms * 1000) / rows1)) as [
          number,
          number,
        ],
      );
      const perRow = (ms: number | null) => (ms === null ? 'n/a' : `${((ms * 1000) / rows1).toFixed(1)}`);
      out(
        `   processor, PROCESS_WRITE_METHOD=${method}: ${rows1} rows in ${elapsed.toFixed(2)} s → ${Math.round(rows1 / elapsed)} rows/s (target ≥ 80000); CPU µs per row: processor ${perRow(used.processor)} + its PostgreSQL backends ${perRow(used.processorBackends)}`,
      );
    }
    await pool.query('TRUNCATE positions');
    const perSecond = processorRates.get(defaultMethod) ?? Number.NaN;

    // Peer: the bare database ceiling of the method — pre-built 5000-row unnest inserts (no Redis,
    // no decoding, no device update), two connections in parallel as the processor uses.
    const bareRows = args.quick ? 20_000 : 100_000;
    const bareSql = `INSERT INTO positions (id, device, fix_time, received_at, location, altitude, heading, speed, satellites, priority, event_io_id, io, attributes)
      SELECT position_id(u.d, u.t * 1000, 0), u.d, 'epoch'::timestamptz + u.t * interval '1 millisecond', now(), ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326),
             100, 0, 40, 12, 0, 0, u.io::json, u.a::json
        FROM unnest($1::int[], $2::bigint[], $3::float8[], $4::float8[], $5::text[], $6::text[]) AS u(d, t, lon, lat, io, a)
      ON CONFLICT (id) DO NOTHING`;
    const deviceIds = (await pool.query('SELECT id FROM devices ORDER BY id')).rows.map((x) => Number(x.id));
    const ids = new Map(
      (await pool.query<{ id: number; imei: string }>('SELECT id, imei FROM devices')).rows.map((x) => [x.imei, x.id]),
    );
    const ioText = JSON.stringify({ 239: 1, 240: 1, 21: 4, 66: 24079, 67: 4101, 16: 123456, 69: 1 });
    const attrText = JSON.stringify({
      ignition: true,
      movement: true,
      gsmSignal: 4,
      externalVoltage: 24.079,
      batteryVoltage: 4.101,
      totalOdometer: 123456,
      gnssStatus: 1,
    });
    const bareBase = Date.now() - 60 * 24 * 3_600_000;
    /** `bareRows` rows in 5000-row chunks, `send` on 2 connections at once: rows/s and CPU used. */
    const barePeer = async (send: (peerPool: pg.Pool, first: number, n: number) => Promise<unknown>) => {
      await pool.query('TRUNCATE positions');
      // Its own connections, named like the processor's so the CPU meter reads their backends.
      const peerPool = new pg.Pool({ ...db.connection, max: 2, application_name: 'fleet-processor' });
      for (const c of await Promise.all([peerPool.connect(), peerPool.connect()])) c.release();
      const cpu = cpuMeter(pool, undefined);
      await cpu.sample();
      const started = performance.now();
      let nextChunk = 0;
      const worker = async () => {
        for (;;) {
          const c = nextChunk;
          nextChunk += 5000;
          if (c >= bareRows) return;
          await send(peerPool, c, Math.min(5000, bareRows - c));
        }
      };
      await Promise.all([worker(), worker()]);
      const perSecond = bareRows / ((performance.now() - started) / 1000);
      const used = await cpu.done();
      await peerPool.end();
      return { perSecond, used };
    };
    const bare = await barePeer((peerPool, c, n) => {
      const idx = Array.from({ length: n }, (_, i) => c + i);
      return peerPool.query(bareSql, [
        idx.map((i) => deviceIds[i % deviceIds.length]),
        idx.map((i) => bareBase + i * 1000),
        idx.map(() => 25),
        idx.map(() => 54),
        idx.map(() => ioText),
        idx.map(() => attrText),
      ]);
    });
    const barePerSecond = bare.perSecond;
    const bareUsed = bare.used;
    const pgPerRow = (ms: number | null, rows: number) => (ms === null ? 'n/a' : ((ms * 1000) / rows).toFixed(1));
    out(
      `   peer (bare 5000-row unnest inserts, 2 connections, no Redis/decode/device update): ${Math.round(barePerSecond)} rows/s; CPU µs per row: this process ${pgPerRow(bareUsed.processor, bareRows)} + its PostgreSQL backends ${pgPerRow(bareUsed.processorBackends, bareRows)}`,
    );
    for (const [method, v] of processorRates) {
      out(`   ratio processor (${method}) / bare-insert ceiling: ${(v / barePerSecond).toFixed(2)} (target ≥ 0.9)`);
    }
    // Information, not the target's peer: the same bare rows as binary COPY straight into
    // positions (what the direct method does before its device statement), so a reader sees how
    // far a COPY-based writer is from its own ceiling too.
    const { perSecond: copyPerSecond, used: copyUsed } = await barePeer(async (peerPool, c, n) => {
      const rows = Array.from({ length: n }, (_, i) =>
        benchRow({
          imei: imeis[(c + i) % DEVICES]!,
          fixTime: bareBase + (c + i) * 1000,
          receivedAt: bareBase,
          latitude: 54,
          longitude: 25,
          speed: 40,
          io: ioText,
          attributes: attrText,
        }),
      );
      const data = copyPositions(rows, (r) => ids.get(r.imei)!);
      const client = await peerPool.connect();
      try {
        await pipeline([data], client.query(copyFrom(POSITIONS_COPY)));
      } finally {
        client.release();
      }
    });
    out(
      `   peer, information only (bare 5000-row binary COPY into positions, 2 connections, no Redis/decode/device update): ${Math.round(copyPerSecond)} rows/s; CPU µs per row: this process ${pgPerRow(copyUsed.processor, bareRows)} + its PostgreSQL backends ${pgPerRow(copyUsed.processorBackends, bareRows)}`,
    );
    for (const [method, v] of processorRates) {
      out(
        `   ratio processor (${method}) / bare-COPY peer: ${(v / copyPerSecond).toFixed(2)} (information; the target is the unnest peer above)`,
      );
    }
    // Processor, PostgreSQL and the bare peer share this machine's cores: where the cores are the
    // limit, rows/s is cores ÷ CPU per row, so the ratio is about the peer's whole CPU per row over
    // the processor's (Redis's share left out of both).
    if (bareUsed.processorBackends !== null) {
      const bareUs = ((bareUsed.processor + bareUsed.processorBackends) * 1000) / bareRows;
      for (const [method, [own, backends]] of processorCpu) {
        out(
          `   CPU-bound ratio (${method}): bare ${bareUs.toFixed(1)} µs/row ÷ (processor ${own.toFixed(1)} + its backends ${backends.toFixed(1)}) = ${(bareUs / (own + backends)).toFixed(2)}, what the ratio comes to when the cores are the limit`,
        );
      }
    }

    // Side by side, same rows, same run: how the writer hands rows to PostgreSQL (array parameters
    // + unnest, COPY into a staging table + the same INSERT … SELECT … ON CONFLICT, or COPY into
    // positions + the device statement), with 1, 2
    // and 4 connections writing batches at once. The real PositionWriter, device update included.
    const methodRows = args.quick ? 20_000 : 60_000;
    const indexes = (
      await pool.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE tablename = 'positions'")
    ).rows.map((x) => x.indexname);
    out(`   write methods (${methodRows} rows in 5000-row batches each; positions indexes: ${indexes.join(', ')}):`);
    const methodBase = Date.now() - 90 * 24 * 3_600_000;
    const methodResults: Array<[string, number, string]> = [];
    let round = 0;
    for (const connections of [1, 2, 4]) {
      for (const method of WRITE_METHODS) {
        await pool.query('TRUNCATE positions');
        const mpool = new pg.Pool({ ...db.connection, max: connections, application_name: 'fleet-processor' });
        const mcpu = cpuMeter(pool, undefined);
        await mcpu.sample();
        const writer = new PositionWriter(mpool, method);
        const t = Date.now() + round++ * 1_000_000_000;
        let nextBatch = 0;
        const started = performance.now();
        const work = async () => {
          for (;;) {
            const c = nextBatch;
            nextBatch += 5000;
            if (c >= methodRows) return;
            const rows = Array.from({ length: Math.min(5000, methodRows - c) }, (_, i) =>
              benchRow({
                imei: imeis[(c + i) % DEVICES]!,
                fixTime: methodBase + (c + i) * 1000,
                receivedAt: t,
                latitude: 54 + i * 1e-5,
                longitude: 25,
                speed: 40,
                io: ioText,
                attributes: attrText,
              }),
            );
            await writeRows(writer, rows, ids);
          }
        };
        await Promise.all(Array.from({ length: connections }, work));
        const perSec = methodRows / ((performance.now() - started) / 1000);
        const backends = (await mcpu.done()).processorBackends;
        await mpool.end();
        methodResults.push([`${method}×${connections}`, perSec, pgPerRow(backends, methodRows)]);
      }
    }
    const bestMethod = methodResults.reduce((a, b) => (b[1] > a[1] ? b : a));
    out(
      `     ${methodResults.map(([name, v, us]) => `${name} ${Math.round(v)} rows/s (${(v / barePerSecond).toFixed(2)}× bare; PostgreSQL ${us} µs/row)`).join(', ')}`,
    );
    out(`     best: ${bestMethod[0]}; the processor's default is PROCESS_WRITE_METHOD=${defaultMethod}`);
    await pool.query('TRUNCATE positions');

    // Peer: one INSERT per row, autocommit, same table and conflict rule.
    const peerRows = args.quick ? 500 : 3000;
    const peerStart = performance.now();
    const client = await pool.connect();
    try {
      for (let i = 0; i < peerRows; i++) {
        await client.query(
          `INSERT INTO positions (id, device, fix_time, received_at, location, altitude, heading, speed, satellites, priority, event_io_id, io, attributes)
           SELECT position_id(id, t, 0), id, t, now(), ST_SetSRID(ST_MakePoint(25, 54), 4326), 100, 0, 40, 12, 0, 0, '{}'::json, '{}'::json
             FROM devices, LATERAL (SELECT now() - $2 * interval '1 millisecond' AS t) x WHERE imei = $1
           ON CONFLICT (id) DO NOTHING`,
          [imeis[i % DEVICES], 1_000_000 + i],
        );
      }
    } finally {
      client.release();
    }
    const peerPerSecond = peerRows / ((performance.now() - peerStart) / 1000);
    out(`   peer (one INSERT per row, autocommit): ${Math.round(peerPerSecond)} rows/s`);
    out(`   ratio processor / per-row peer: ${(perSecond / peerPerSecond).toFixed(1)}×`);

    // Where the processor's own CPU goes per row, without Redis or PostgreSQL: the steps of a
    // 500-entry batch as the consumer runs them, each on the same batches. CPU time, not wall time:
    // on a busy machine this process waits for a core, and that is not the processor's cost.
    const cpuBatches = Array.from({ length: 10 }, (_, b) =>
      Array.from({ length: 500 }, (_, i) => {
        const k = b * 500 + i;
        const fields = entry(imeis, k, base, Date.now()).map((x) => (Buffer.isBuffer(x) ? x : Buffer.from(x)));
        return { stream: 'bench:cpu', id: `0-${k}`, deliveries: 1, fields };
      }),
    );
    const idType = await pool.query<{ t: string }>(
      "SELECT format_type(atttypid, NULL) AS t FROM pg_attribute WHERE attrelid = 'devices'::regclass AND attname = 'id'",
    );
    const encodeId = idEncoder(idType.rows[0]!.t);
    const stepUs = { decode: 0, rows: 0, jumps: 0, copy: 0 };
    const timed = <T>(step: keyof typeof stepUs, f: () => T, measure: boolean): T => {
      const t = process.cpuUsage();
      const v = f();
      const used = process.cpuUsage(t);
      if (measure) stepUs[step] += used.user + used.system;
      return v;
    };
    const cpuRounds = args.quick ? 4 : 20;
    for (let round = 0; round < cpuRounds + 2; round++) {
      for (const batch of cpuBatches) {
        const measure = round >= 2; // two rounds to warm up
        const { decoded } = timed('decode', () => triage(batch), measure);
        const rows = timed(
          'rows',
          () =>
            decoded.flatMap((d) =>
              entriesToRows([d.entry], { now: Date.now(), futureMarginMs: 3_600_000 }, protocolIoViews),
            ),
          measure,
        );
        timed(
          'jumps',
          () => {
            flagJumps(rows, new Map(), 500);
            return latestPerDevice(rows);
          },
          measure,
        );
        timed(
          'copy',
          () =>
            defaultMethod === 'direct'
              ? copyPositions(rows, (r) => ids.get(r.imei)!)
              : copyBinary(rows, (r) => ids.get(r.imei)!, encodeId),
          measure,
        );
      }
    }
    const cpuRows = cpuRounds * cpuBatches.length * 500 * RECORDS;
    const us = (total: number) => total / cpuRows;
    const totalUs = us(stepUs.decode + stepUs.rows + stepUs.jumps + stepUs.copy);
    out(
      `   processor's own work per row (CPU, no I/O): ${totalUs.toFixed(2)} µs = entry + frame decode ${us(stepUs.decode).toFixed(2)}, rows (flags, IO and attributes JSON) ${us(stepUs.rows).toFixed(2)}, jump rule + latest ${us(stepUs.jumps).toFixed(2)}, COPY data (${defaultMethod === 'direct' ? 'positions' : 'stage'}) ${us(stepUs.copy).toFixed(2)} → ${Math.round(1e6 / totalUs)} rows/s per core`,
    );

    // --- 2. end-to-end latency at a steady rate ------------------------------------------------
    const p2 = `${r.prefix}lat:`;
    const k2 = redisKeys(p2);
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    const proc2 = await runProcess(config(p2), logger, {
      afterCommit: async (ids) => {
        const now = performance.now();
        for (const id of ids) {
          const t = sentAt.get(id);
          if (t !== undefined) {
            latencies.push(now - t);
            sentAt.delete(id);
          }
        }
      },
    });
    running.push(proc2);
    await sleep(500);
    const sent2 = await produce(k2.telemetryAvl, Date.now() - 10 * 24 * 3_600_000, sentAt);
    const settleStart = Date.now();
    while (!(await drained(k2.telemetryAvl)) && Date.now() - settleStart < 60_000) await sleep(20);
    await proc2.stop();
    running.pop();
    latencies.sort((a, b) => a - b);
    out(
      `\n2. latency: ${sent2.records} records offered at ${Math.round(sent2.records / sent2.seconds)} records/s for ${sent2.seconds.toFixed(1)} s`,
    );
    out(
      `   frame receive → rows committed: p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${(latencies[latencies.length - 1] ?? Number.NaN).toFixed(1)} ms (target p99 ≤ 50 ms at 20k records/s; PROCESS_WRITE_METHOD=${defaultMethod}; ${latencies.length} frames)`,
    );

    // --- 3. history derivation on and off, same run ----------------------------------------------
    const HISTORY_TABLES = 'positions, trips, stops, events, daily_summaries, history_dirty';
    const marks = async () => Number((await pool.query('SELECT count(*)::int AS n FROM history_dirty')).rows[0].n);
    /** Waits (at most 120 s) for the worker to handle every mark; returns the seconds it took. */
    const workerCaughtUp = async () => {
      const t = performance.now();
      while ((await marks()) > 0 && performance.now() - t < 120_000) await sleep(50);
      return { seconds: (performance.now() - t) / 1000, left: await marks() };
    };
    out(
      `\n3. history derivation: drives with stops (200 s parked, 100 s driving in fix time), ${ENTRIES} entries × ${RECORDS} records pre-filled, HISTORY_CONCURRENCY=${config('x').HISTORY_CONCURRENCY}, HISTORY_YIELD_BEHIND_MS=${config('x').HISTORY_YIELD_BEHIND_MS} (max ${config('x').HISTORY_YIELD_MAX_MS})`,
    );
    /** Passes a worker left out while the processor was behind its telemetry (HISTORY_YIELD_BEHIND_MS). */
    const passesLeftOut = async (metricsPort: number) => {
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      return Number(/^fleet_history_yields_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? 0);
    };
    // Off, on, off, on: the machine's load drifts, so each side gets two runs and the means compare.
    const histRates = new Map<boolean, number[]>();
    const base3 = Date.now() - 20 * 24 * 3_600_000;
    for (const history of [false, true, false, true]) {
      await pool.query(`TRUNCATE ${HISTORY_TABLES}`);
      const p3 = `${r.prefix}hist-${history}:`;
      const k3 = redisKeys(p3);
      await prefill(k3.telemetryAvl, base3, true);
      // The worker as deployed (its own process, at its HISTORY_NICE), up before the clock starts.
      const workerMetricsPort = history ? await freePort() : 0;
      const worker = history
        ? await startDaemonRole(
            'derive',
            {
              ...process.env,
              ...Object.fromEntries(Object.entries(configEnv(p3)).filter(([, v]) => v !== undefined)),
              HISTORY_METRICS_PORT: String(workerMetricsPort),
              LOG_LEVEL: 'info',
            },
            'history worker started',
          )
        : null;
      const cpu = cpuMeter(pool, worker?.child.pid);
      await cpu.sample();
      const t0 = performance.now();
      const proc = await runProcess(config(p3, defaultMethod, history), logger);
      running.push(proc);
      for (let n = 0; !(await drained(k3.telemetryAvl)); n++) {
        if (n % 10 === 0) await cpu.sample();
        await sleep(20);
      }
      const elapsed = (performance.now() - t0) / 1000;
      const used = await cpu.done();
      const rows = await countRows();
      await proc.stop();
      running.pop();
      histRates.set(history, [...(histRates.get(history) ?? []), rows / elapsed]);
      let after = '';
      if (worker) {
        const leftOut = await passesLeftOut(workerMetricsPort);
        const caught = await workerCaughtUp();
        await worker.stop();
        const n = (t: string) => pool.query(`SELECT count(*)::int AS n FROM ${t}`).then((x) => x.rows[0].n);
        after = `; the worker left ${leftOut} passes out meanwhile (processor behind) and then needed ${caught.seconds.toFixed(1)} s more to finish (${caught.left} devices' marks left) → ${await n('trips')} trips, ${await n('stops')} stops, ${await n('events')} events`;
      }
      out(
        `   derivation ${history ? 'on ' : 'off'}: processor ${rows} rows in ${elapsed.toFixed(2)} s → ${Math.round(rows / elapsed)} rows/s${after}`,
      );
      const perRow = (ms: number | null) => (ms === null ? 'n/a' : `${((ms * 1000) / rows).toFixed(1)}`);
      out(
        `      CPU µs per row meanwhile: processor ${perRow(used.processor)} + its PostgreSQL backends ${perRow(used.processorBackends)}${history ? `; worker ${perRow(used.worker)} + its backends ${perRow(used.workerBackends)}` : ''}`,
      );
    }
    out(
      `   ratio processor with derivation on / off (means of two runs each): ${(mean(histRates.get(true)) / mean(histRates.get(false))).toFixed(2)} (target ≥ 0.8)`,
    );

    // Steady rate, processor and worker together: position commit → its derived rows committed.
    await pool.query(`TRUNCATE ${HISTORY_TABLES}`);
    const p4 = `${r.prefix}hist-lat:`;
    const k4 = redisKeys(p4);
    const sent4 = new Map<string, number>();
    const commitLatencies: number[] = [];
    const lags: number[] = [];
    const proc4 = await runProcess(config(p4), logger, {
      afterCommit: async (ids) => {
        const now = performance.now();
        for (const id of ids) {
          const t = sent4.get(id);
          if (t !== undefined) commitLatencies.push(now - t);
          sent4.delete(id);
        }
      },
    });
    running.push(proc4);
    // markedAt is the processor transaction's now() (its start), so the lag slightly overstates
    // commit → derived; one sample per derived window, for the oldest position it covers.
    const worker4 = await runDerive(config(p4), logger, {
      onDerived: (o) => {
        if (o.markedAt !== undefined) lags.push(Date.now() - o.markedAt);
      },
    });
    await sleep(500);
    const sent = await produce(k4.telemetryAvl, Date.now() - 15 * 24 * 3_600_000, sent4, true);
    const settle4 = Date.now();
    while (!(await drained(k4.telemetryAvl)) && Date.now() - settle4 < 60_000) await sleep(20);
    await proc4.stop();
    running.pop();
    const caught = await workerCaughtUp();
    // Each pass left out adds up to HISTORY_POLL_MS to the lag below.
    const yields = await passesLeftOut(worker4.metricsPort);
    await worker4.stop();
    lags.sort((a, b) => a - b);
    commitLatencies.sort((a, b) => a - b);
    out(
      `   steady: ${sent.records} records offered at ${Math.round(sent.records / sent.seconds)} records/s for ${sent.seconds.toFixed(1)} s with the history worker running (caught up ${caught.seconds.toFixed(1)} s after the processor drained; ${yields} passes left out with the processor behind)`,
    );
    out(
      `   position commit → its trips/stops/events committed: p50 ${(percentile(lags, 50) / 1000).toFixed(2)} s, p99 ${(percentile(lags, 99) / 1000).toFixed(2)} s, max ${((lags.at(-1) ?? Number.NaN) / 1000).toFixed(2)} s (target p99 < 2 s; ${lags.length} device windows)`,
    );
    out(
      `   frame receive → rows committed meanwhile: p50 ${percentile(commitLatencies, 50).toFixed(1)} ms, p99 ${percentile(commitLatencies, 99).toFixed(1)} ms`,
    );
  } finally {
    await Promise.allSettled(running.map((p) => p.stop()));
    await pool.end();
    await r.cleanup();
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
