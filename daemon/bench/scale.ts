/**
 * `npm run bench:scale [-- --quick]`: past one machine. Each part is a module of its own that
 * prints its figures, same-run ratios and PASS/MISS; this entry runs them in turn.
 *
 *  - storage (scale-storage.ts): positions partitioned by month — query times at 1 and 20 million
 *    rows, the processor's writer into the partitioned table and into a plain one.
 *  - redis (scale-redis.ts): the same ingest load on one Redis and on a local 3-master Redis
 *    Cluster — throughput ratio, the busiest master's share of the entries, nothing lost.
 *
 * `--quick` shrinks every part (a smoke run, not the figures); `--part storage|redis` runs one
 * (`storage:writes` or `storage:queries` half of the storage part). Uses the local PostgreSQL
 * (temporary databases, dropped at the end) and private redis-servers.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { redisScale } from './scale-redis.js';
import { storageScale } from './scale-storage.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    part: { type: 'string', multiple: true },
  },
});
const quick = Boolean(args.quick);
const wanted = (name: string) => !args.part || args.part.includes(name);
const out = (s = '') => process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  out(`bench:scale — ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)}, Node ${process.version}`);
  let ok = true;
  const storage = ['storage', 'storage:writes', 'storage:queries'].find((p) => wanted(p));
  if (storage) {
    ok =
      (await storageScale(
        {
          largeRows: quick ? 2_000_000 : 20_000_000,
          smallRows: quick ? 100_000 : 1_000_000,
          devices: 100,
          queries: quick ? 50 : 200,
          writeRounds: quick ? 4 : 10,
          rowsPerRound: quick ? 20_000 : 50_000,
          out,
        },
        storage === 'storage' ? undefined : storage === 'storage:writes' ? 'writes' : 'queries',
      )) && ok;
  }
  if (wanted('redis')) {
    ok =
      (await redisScale({
        devices: quick ? 120 : 300,
        seconds: quick ? 3 : 8,
        rounds: quick ? 1 : 3,
        recordsPerFrame: 10,
        out,
      })) && ok;
  }
  out(`bench:scale ${ok ? 'PASS' : 'MISS'} (load average ${loadavg()[0]!.toFixed(1)})`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
