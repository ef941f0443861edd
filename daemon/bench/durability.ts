/**
 * bench:ingest phase "Redis durability": the same saturating fleet against the real ingestion
 * server three times, each with a private redis-server in another persistence mode — none (what
 * the tests and `npm start` use), AOF `everysec`, AOF `always` (what docker-compose.yml ships: every
 * acknowledged frame is on disk before its ack). Prints acked records/s and ack latency side by side.
 *
 * Called at the end of `npm run bench:ingest`; alone: `npx tsx daemon/bench/durability.ts [--quick]`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startIngestion } from '../src/ingestion/main.js';
import { CODEC_8E } from '../src/protocol/index.js';
import { runFleet } from '../src/simulator/fleet.js';

const MODES = [
  { name: 'no persistence', args: ['--appendonly', 'no'] },
  { name: 'AOF everysec', args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] },
  { name: 'AOF always (compose)', args: ['--appendonly', 'yes', '--appendfsync', 'always'] },
] as const;

async function startRedis(port: number, args: readonly string[]): Promise<{ proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-durability-'));
  const proc = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, ...args],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return { proc, dir };
    if (i > 100) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export async function durabilityPhase(log: (s: string) => void, quick: boolean): Promise<void> {
  const devices = quick ? 100 : 500;
  const seconds = quick ? 3 : 8;
  log(
    `Redis durability: ${devices} devices sending the next 10-record frame right after each ack, ${seconds} s per mode`,
  );
  const rows: string[] = [];
  let base = 0;
  for (const mode of MODES) {
    const port = await freePort();
    const redis = await startRedis(port, mode.args);
    const ingestion = await startIngestion({
      instanceId: `bench-durability-${process.pid}`,
      redisUrl: `redis://127.0.0.1:${port}`,
      redisPrefix: 'bench:',
      lookup: async () => ({ known: true, id: 1, enabled: true }),
      deviceCacheTtlMs: 600_000,
      host: '127.0.0.1',
      tcpPort: 0,
      metricsPort: null,
      limits: { maxConnectionsPerIp: 100_000 },
      commands: false,
    });
    try {
      // Warm-up (JIT, connections, AOF file creation), not counted.
      await runFleet({
        host: '127.0.0.1',
        port: ingestion.tcpPort,
        devices: 50,
        rate: 0,
        records: 10,
        duration: 1,
        seed: 8,
      });
      const s = await runFleet({
        host: '127.0.0.1',
        port: ingestion.tcpPort,
        devices,
        rate: 0,
        records: 10,
        duration: seconds,
        seed: 7,
        codec: CODEC_8E,
        processes: 1,
      });
      const perSec = s.counters.recordsAcked / (s.sendMs / 1000);
      if (base === 0) base = perSec;
      rows.push(
        `  ${mode.name.padEnd(22)} ${(perSec / 1000).toFixed(1).padStart(6)}k acked records/s (${((perSec / base) * 100).toFixed(0)}% of no persistence), ` +
          `ack p50 ${s.ackLatencyMs.p50} ms p99 ${s.ackLatencyMs.p99} ms max ${s.ackLatencyMs.max} ms; load average ${loadavg()[0]!.toFixed(1)}`,
      );
    } finally {
      await ingestion.stop('bench done');
      redis.proc.kill('SIGTERM');
      rmSync(redis.dir, { recursive: true, force: true });
    }
  }
  for (const r of rows) log(r);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  durabilityPhase((s) => process.stdout.write(`${s}\n`), process.argv.includes('--quick')).then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
