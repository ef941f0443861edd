import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { startOwnRedis } from '../../test/support/own-redis.js';
import { startIngestion } from '../src/ingestion/main.js';
import { CODEC_8E } from '../src/protocol/index.js';
import { runFleet } from '../src/simulator/fleet.js';

const MODES = [
  { name: 'no persistence', args: ['--appendonly', 'no'] },
  { name: 'AOF everysec', args: ['--appendonly', 'yes', '--appendfsync', 'everysec'] },
  { name: 'AOF always (compose)', args: ['--appendonly', 'yes', '--appendfsync', 'always'] },
] as const;

export async function durabilityPhase(log: (s: string) => void, quick: boolean): Promise<void> {
  const devices = quick ? 100 : 500;
  const seconds = quick ? 3 : 8;
  log(
    `Redis durability: ${devices} devices sending the next 10-record frame right after each ack, ${seconds} s per mode`,
  );
  const rows: string[] = [];
  let base = 0;
  for (const mode of MODES) {
    const redis = await startOwnRedis({ args: [...mode.args] });
    const port = redis.port;
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
      await redis.stop();
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
