/**
 * What the ingestion benchmarks run with: every device known and enabled (no database), TCP on a
 * free port of 127.0.0.1, no UDP or metrics port, and no per-IP connection cap, since every
 * simulated device connects from 127.0.0.1.
 */
import type { startIngestion } from '../src/ingestion/main.js';

export const BENCH_INGESTION = {
  lookup: async () => ({ known: true, id: 1, enabled: true }),
  deviceCacheTtlMs: 600_000,
  host: '127.0.0.1',
  tcpPort: 0,
  udpPort: null,
  metricsPort: null,
  limits: { maxConnections: 100_000, maxConnectionsPerIp: 100_000 },
} satisfies Partial<Parameters<typeof startIngestion>[0]>;
