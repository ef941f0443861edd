/** The processor's Prometheus metrics (names prefixed `fleet_processor_`). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ProcessorMetrics = ReturnType<typeof createProcessorMetrics>;

export function createProcessorMetrics(registry: Registry) {
  const registers = [registry];
  return {
    batches: new Counter({ name: 'fleet_processor_batches_total', help: 'Batches committed', registers }),
    entries: new Counter({
      name: 'fleet_processor_entries_total',
      help: 'Stream entries acknowledged after their rows were committed',
      registers,
    }),
    rowsWritten: new Counter({ name: 'fleet_processor_rows_written_total', help: 'Position rows inserted', registers }),
    conflicts: new Counter({
      name: 'fleet_processor_conflicts_skipped_total',
      help: 'Position rows skipped because the same record was already stored (replays, resends)',
      registers,
    }),
    fallbacks: new Counter({
      name: 'fleet_processor_write_fallbacks_total',
      help: 'Batches the direct COPY handed to the staging table because one of their rows was already stored',
      registers,
    }),
    flagged: new Counter({
      name: 'fleet_processor_flagged_records_total',
      help: 'Records stored with a data-quality flag, by reason',
      labelNames: ['reason'],
      registers,
    }),
    deadLetters: new Counter({
      name: 'fleet_processor_dead_letters_total',
      help: 'Entries moved to the dead-letter stream, by cause',
      labelNames: ['cause'],
      registers,
    }),
    claimed: new Counter({
      name: 'fleet_processor_claimed_entries_total',
      help: 'Pending entries claimed from idle (presumably dead) consumers',
      registers,
    }),
    retries: new Counter({
      name: 'fleet_processor_retries_total',
      help: 'Operations retried after a failure, by dependency',
      labelNames: ['dependency'],
      registers,
    }),
    commitSeconds: new Histogram({
      name: 'fleet_processor_commit_seconds',
      help: 'Time to write and commit one batch',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    endToEndSeconds: new Histogram({
      name: 'fleet_processor_end_to_end_seconds',
      help: 'From frame receipt by ingestion to its rows committed',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    lag: new Gauge({
      name: 'fleet_processor_consumer_lag',
      help: 'Entries of telemetry:avl not yet delivered to the processors group (XINFO GROUPS lag)',
      registers,
    }),
    pending: new Gauge({
      name: 'fleet_processor_pending_entries',
      help: 'Entries delivered to the processors group but not yet acknowledged',
      registers,
    }),
    streamLength: new Gauge({ name: 'fleet_processor_stream_length', help: 'XLEN of telemetry:avl', registers }),
    deadLength: new Gauge({
      name: 'fleet_processor_dead_letter_entries',
      help: 'XLEN of telemetry:dead (capped at PROCESS_DEAD_MAXLEN)',
      registers,
    }),
    trimmed: new Counter({
      name: 'fleet_processor_stream_trimmed_total',
      help: 'Acknowledged entries trimmed from telemetry:avl',
      registers,
    }),
    postgresUp: new Gauge({
      name: 'fleet_processor_postgres_up',
      help: '1 when the last database operation succeeded',
      registers,
    }),
    redisUp: new Gauge({
      name: 'fleet_processor_redis_up',
      help: '1 when the last Redis operation succeeded',
      registers,
    }),
    deviceEvents: new Counter({
      name: 'fleet_processor_connection_events_total',
      help: 'connections:events entries applied to device state',
      registers,
    }),
    devicesMarkedOffline: new Counter({
      name: 'fleet_processor_devices_marked_offline_total',
      help: 'Devices shown offline because their ingestion instance heartbeat expired',
      registers,
    }),
    lastCommit: new Gauge({
      name: 'fleet_processor_last_commit_timestamp_seconds',
      help: 'Unix time of the last committed batch',
      registers,
    }),
  };
}
