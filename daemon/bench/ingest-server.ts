/**
 * Child process of `npm run bench:ingest`: one ingestion server (the real one, in its own process
 * so its CPU time and memory can be measured alone). Every IMEI is allowed (the device lookup is
 * not what is measured). Answers 'mem' requests with its memory after a forced GC, and profiles its
 * CPU between 'profile-start' and 'profile-stop' (see cpu-profile.ts).
 */
import type { Histogram } from 'prom-client';
import { startIngestion } from '../src/ingestion/main.js';
import { BENCH_INGESTION } from './bench-ingestion.js';
import { type CpuBreakdown, startCpuProfile } from './cpu-profile.js';
import { watchLoop } from './loop-watch.js';

const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const ingestion = await startIngestion({
  instanceId: `bench-${process.pid}`,
  redisUrl,
  redisPrefix: process.env.BENCH_REDIS_PREFIX ?? 'bench:',
  ...BENCH_INGESTION,
});

// The daemon's own view, to tell its delays from the simulator's and the network's.
const loop = watchLoop();

/** Cumulative bucket counts of a prom-client histogram (le → count), summed over labels. */
async function buckets(h: {
  get(): Promise<{ values: { metricName?: string; labels: Record<string, unknown>; value: number }[] }>;
}): Promise<Array<[number, number]>> {
  const out = new Map<number, number>();
  for (const v of (await h.get()).values) {
    if (!v.metricName?.endsWith('_bucket')) continue;
    const le = v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le);
    out.set(le, (out.get(le) ?? 0) + v.value);
  }
  return [...out.entries()].sort((a, b) => a[0] - b[0]);
}

/** A histogram's `_sum` or `_count`, summed over labels. */
async function total(h: Histogram, suffix: '_sum' | '_count'): Promise<number> {
  return (await h.get()).values.filter((v) => v.metricName?.endsWith(suffix)).reduce((n, v) => n + v.value, 0);
}

type Msg =
  | { type: 'mem' }
  | { type: 'stop' }
  | { type: 'stats' }
  | { type: 'mark' }
  | { type: 'profile-start' }
  | { type: 'profile-stop' };
let stopProfile: (() => Promise<CpuBreakdown>) | null = null;
let framesAtStart = 0;
const framesAcked = async () => (await ingestion.metrics.frames.get()).values.reduce((n, v) => n + v.value, 0);
process.on('message', async (m: Msg) => {
  if (m.type === 'mem') {
    // Two passes: the first GC may only schedule finalisers.
    globalThis.gc?.();
    await new Promise((r) => setTimeout(r, 50));
    globalThis.gc?.();
    const mem = process.memoryUsage();
    process.send?.({ type: 'mem', ...mem, sessions: ingestion.sessions.size });
  } else if (m.type === 'stats') {
    // Loop delay since the previous 'stats'; histograms cumulative (the caller takes differences).
    const stats = {
      type: 'stats',
      ...loop.window(),
      ack: await buckets(ingestion.metrics.ackLatency),
      xadd: await buckets(ingestion.metrics.xaddLatency),
      batch: await buckets(ingestion.metrics.xaddBatchSize),
      batchEntries: await total(ingestion.metrics.xaddBatchSize, '_sum'),
    };
    process.send?.(stats);
  } else if (m.type === 'mark') {
    loop.mark();
    process.send?.({ type: 'mark' });
  } else if (m.type === 'profile-start') {
    framesAtStart = await framesAcked();
    stopProfile = await startCpuProfile();
    process.send?.({ type: 'profile-start' });
  } else if (m.type === 'profile-stop') {
    const breakdown = await stopProfile?.();
    if (breakdown) breakdown.frames = (await framesAcked()) - framesAtStart;
    stopProfile = null;
    process.send?.({ type: 'profile-stop', breakdown });
  } else if (m.type === 'stop') {
    await ingestion.stop('bench done');
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', tcpPort: ingestion.tcpPort });
