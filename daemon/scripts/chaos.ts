/**
 * `npm run chaos [-- --duration 60 --devices 100 --rate 2 --records 5 --processors 2 --seed 7]`
 *
 * Under simulator load, kills ingestion and processors with SIGKILL at random moments and restarts
 * Redis (AOF, fsync always) and PostgreSQL, then lets the pipeline settle and compares what the
 * simulated devices saw acknowledged with the rows in `positions`. Bar: 0 missing, 0 duplicated.
 *
 * Everything runs on private servers (own Redis on a free port, own PostgreSQL cluster under /tmp
 * with the real schema), so the shared ones are never touched. Logs of every child process are
 * kept in the printed run directory when the run fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import knexFactory from 'knex';
import { GROUPS, redisKeys } from '../src/contract/index.js';
import { runFleet } from '../src/simulator/fleet.js';
import { registerDevices } from '../src/simulator/register.js';
import { freePort, type OwnPostgres, type OwnRedis, startOwnPostgres, startOwnRedis } from './lib/own-services.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    devices: { type: 'string', default: '100' },
    rate: { type: 'string', default: '2' },
    records: { type: 'string', default: '5' },
    processors: { type: 'string', default: '2' },
    seed: { type: 'string', default: String(Date.now() % 100_000) },
    'settle-timeout': { type: 'string', default: '180' },
  },
});
const durationS = Number(args.duration);
const devices = Number(args.devices);
const seed = Number(args.seed);
const REPO = new URL('../../', import.meta.url).pathname;

function log(msg: string): void {
  process.stdout.write(`[chaos ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (a: number, b: number) => a + Math.floor(Math.random() * (b - a));

class Role {
  child: ChildProcess | undefined;
  starts = 0;
  constructor(
    readonly name: string,
    readonly role: 'ingest' | 'process',
    readonly env: Record<string, string>,
    readonly logDir: string,
  ) {}
  start(): void {
    this.starts++;
    const out = createWriteStream(join(this.logDir, `${this.name}.log`), { flags: 'a' });
    const child = spawn(process.execPath, ['--import', 'tsx', 'daemon/src/cli.ts', this.role], {
      cwd: REPO,
      env: { ...process.env, LOG_STYLE: 'raw', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(out);
    child.stderr?.pipe(out);
    this.child = child;
  }
  async kill9(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  }
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }
}

async function main(): Promise<number> {
  const runDir = mkdtempSync('/tmp/fleet-chaos-');
  log(`run directory ${runDir} (seed ${seed})`);
  let pg: OwnPostgres | undefined;
  let redis: OwnRedis | undefined;
  const roles: Role[] = [];
  let ok = false;
  try {
    log('starting a private PostgreSQL (real schema) and a private Redis with AOF');
    [pg, redis] = await Promise.all([startOwnPostgres(), startOwnRedis({ persist: true })]);
    const knex = knexFactory({ client: 'pg', connection: pg.connection, pool: { min: 0, max: 2 } });
    await registerDevices(knex, { devices, seed });

    const ingestPort = await freePort();
    const common = {
      REDIS: redis.url,
      FLEET_REDIS_PREFIX: '',
      DB_HOST: pg.connection.host,
      DB_PORT: String(pg.connection.port),
      DB_DATABASE: pg.connection.database,
      DB_USER: pg.connection.user,
      LOG_LEVEL: 'info',
    };
    const ingest = new Role(
      'ingest',
      'ingest',
      {
        ...common,
        INSTANCE_ID: 'chaos-ingest',
        INGEST_HOST: '127.0.0.1',
        INGEST_PORT: String(ingestPort),
        INGEST_UDP: 'false',
        INGEST_METRICS_PORT: '0',
      },
      runDir,
    );
    roles.push(ingest);
    const processors = Array.from(
      { length: Number(args.processors) },
      (_, i) =>
        new Role(
          `processor-${i}`,
          'process',
          { ...common, PROCESS_METRICS_PORT: '0', PROCESS_CLAIM_IDLE_MS: '3000' },
          runDir,
        ),
    );
    roles.push(...processors);
    for (const r of roles) r.start();
    await sleep(3000);

    const abort = new AbortController();
    const counts: Record<string, number> = {};
    const chaos = (async () => {
      const actions = ['kill-ingest', 'kill-processor', 'restart-redis', 'restart-postgres'];
      const order = [...actions].sort(() => Math.random() - 0.5);
      await sleep(between(3000, 6000));
      while (!abort.signal.aborted) {
        const action = order.shift() ?? actions[between(0, actions.length)]!;
        counts[action] = (counts[action] ?? 0) + 1;
        log(action);
        if (action === 'kill-ingest') {
          await ingest.kill9();
          await sleep(between(200, 1500));
          ingest.start();
        } else if (action === 'kill-processor') {
          const victim = processors[between(0, processors.length)]!;
          await victim.kill9();
          await sleep(between(200, 2000));
          victim.start();
        } else if (action === 'restart-redis') {
          await redis!.restart(Math.random() < 0.5);
        } else {
          await pg!.restart('immediate', between(500, 3000));
        }
        await sleep(between(2000, 6000));
      }
    })();

    log(`simulating ${devices} devices, ${args.rate} frames/s each of ${args.records} records, for ${durationS} s`);
    const summary = await runFleet({
      host: '127.0.0.1',
      port: ingestPort,
      devices,
      rate: Number(args.rate),
      records: Number(args.records),
      duration: durationS,
      seed,
      collectAcked: true,
      drainMs: 30_000,
      ackTimeoutMs: 5_000,
      onProgress: (p) =>
        log(`connected ${p.connected}/${p.devices} sent ${p.counters.recordsSent} acked ${p.counters.recordsAcked}`),
    });
    abort.abort();
    await chaos;
    for (const r of roles) if (!r.child || r.child.exitCode !== null || r.child.signalCode !== null) r.start();

    log('load finished; letting the pipeline settle');
    const watcher = new Redis(redis.url);
    const keys = redisKeys('');
    const deadline = Date.now() + Number(args['settle-timeout']) * 1000;
    let settled = false;
    while (Date.now() < deadline) {
      const groups = (await watcher.xinfo('GROUPS', keys.telemetryAvl).catch(() => [])) as unknown[][];
      const g = groups.find((x) => x[1] === GROUPS.processors);
      const f = g ? Object.fromEntries([0, 2, 4, 6, 8, 10].map((i) => [String(g[i]), g[i + 1]])) : undefined;
      if (f && Number(f.pending) === 0 && Number(f.lag) === 0) {
        settled = true;
        break;
      }
      await sleep(500);
    }
    const dead = await watcher.xlen(keys.telemetryDead);
    watcher.disconnect();

    const acked = new Map<string, number>();
    for (const a of summary.acked ?? []) {
      const k = `${a.imei}|${a.timestamp}`;
      acked.set(k, (acked.get(k) ?? 0) + 1);
    }
    const res = await knex.raw(
      `SELECT d.imei, (extract(epoch FROM p.fix_time) * 1000)::bigint AS t, count(*)::int AS n
         FROM positions p JOIN devices d ON d.id = p.device GROUP BY 1, 2`,
    );
    const rows = new Map<string, number>();
    let totalRows = 0;
    for (const r of res.rows as { imei: string; t: string; n: number }[]) {
      rows.set(`${r.imei}|${r.t}`, r.n);
      totalRows += r.n;
    }
    await knex.destroy();
    let missing = 0;
    for (const k of acked.keys()) if (!rows.has(k)) missing++;
    let duplicated = 0;
    for (const n of rows.values()) if (n > 1) duplicated += n - 1;
    const notAcked = [...rows.keys()].filter((k) => !acked.has(k)).length;

    log(`chaos actions: ${JSON.stringify(counts)}; restarts: ${roles.map((r) => `${r.name}×${r.starts}`).join(' ')}`);
    log(
      `simulator: sent ${summary.counters.recordsSent}, acknowledged ${summary.counters.recordsAcked} (resent ${summary.counters.recordsResent}, unacknowledged at end ${summary.unacked})`,
    );
    process.stdout.write(
      [
        '',
        `acknowledged records (distinct):   ${acked.size}`,
        `rows in positions:                 ${totalRows}`,
        `missing (acked, no row):           ${missing}`,
        `duplicated (extra rows):           ${duplicated}`,
        `rows never acknowledged to device: ${notAcked}  (stored, ack lost; the device would resend and be deduplicated)`,
        `dead letters:                      ${dead}`,
        `pipeline settled:                  ${settled ? 'yes' : 'NO (timed out)'}`,
        '',
      ].join('\n'),
    );
    ok = missing === 0 && duplicated === 0 && settled && acked.size > 0;
    log(ok ? 'PASS: 0 missing, 0 duplicated' : `FAIL (logs kept in ${runDir})`);
    return ok ? 0 : 1;
  } finally {
    await Promise.allSettled(roles.map((r) => r.stop()));
    await Promise.allSettled([pg?.stop(), redis?.stop()]);
    if (ok) rmSync(runDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
