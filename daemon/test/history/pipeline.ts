/**
 * The real path from a simulated FMB to derived history, for tests that need real trips: ingestion
 * (TCP) → Redis stream → processor (positions + history marks) → history worker. The scripted drive
 * is sent with its own fix times; `settle` waits until the worker handled every mark.
 */
import type { Knex } from 'knex';
import { type DeriveOptions, type RunningDerive, runDerive } from '../../src/history/main.js';
import type { Ingestion } from '../../src/ingestion/main.js';
import { type RunningProcessor, runProcess } from '../../src/processor/main.js';
import type { AvlRecord } from '../../src/protocol/index.js';
import { SimulatedDevice } from '../../src/simulator/device.js';
import { processorConfig, silentLogger, startPipelineIngestion, waitFor } from '../processor/support.js';

export interface HistoryPipeline {
  config: ReturnType<typeof processorConfig>;
  processor: RunningProcessor;
  worker: RunningDerive;
  ingestion: Ingestion;
  /** Sends frames of `perFrame` records in the order given and waits until every record is stored. */
  send(imei: string, records: readonly AvlRecord[], perFrame?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startHistoryPipeline(
  db: { knex: Knex; connection: Parameters<typeof processorConfig>[0] },
  redis: { url: string; prefix: string },
  options: DeriveOptions = {},
): Promise<HistoryPipeline> {
  const config = processorConfig(db.connection, redis.url, redis.prefix, {
    HISTORY_METRICS_PORT: '0',
    HISTORY_POLL_MS: '50',
  });
  const processor = await runProcess(config, silentLogger);
  const worker = await runDerive(config, silentLogger, options);
  const ingestion = await startPipelineIngestion(db.knex, redis, `history-${redis.prefix}`);
  const devices: SimulatedDevice[] = [];
  return {
    config,
    processor,
    worker,
    ingestion,
    async send(imei, records, perFrame = 10) {
      const sim = new SimulatedDevice({ imei, host: '127.0.0.1', port: ingestion.tcpPort });
      devices.push(sim);
      if (!(await sim.connect())) throw new Error(`ingestion refused ${imei}`);
      const before = Number((await db.knex('positions').count<{ count: string }[]>('* as count'))[0]?.count);
      for (let i = 0; i < records.length; i += perFrame) await sim.sendFrame(records.slice(i, i + perFrame));
      await waitFor('every record stored', async () => {
        const rows = await db.knex('positions').count<{ count: string }[]>('* as count');
        return Number(rows[0]?.count) === before + records.length;
      });
    },
    async stop() {
      for (const d of devices) await d.close();
      await worker.stop();
      await processor.stop();
      await ingestion.stop();
    },
  };
}

/** Waits until the history worker has handled every mark. */
export async function settle(knex: Knex): Promise<void> {
  await waitFor(
    'the history worker to handle every mark',
    async () => (await knex('history_dirty').count<{ count: string }[]>('* as count'))[0]!.count === '0',
    60_000,
  );
}
