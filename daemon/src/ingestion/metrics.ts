/** The ingestion role's Prometheus metrics, registered on a caller-supplied registry. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type RefusalReason =
  | 'unknown_device'
  | 'disabled_device'
  | 'network_not_allowed'
  | 'lookup_failed'
  | 'registry_failed'
  | 'bad_imei'
  | 'frame_before_handshake'
  | 'handshake_timeout'
  | 'frame_timeout'
  | 'max_connections'
  | 'max_connections_per_ip'
  | 'frame_too_large'
  | 'desynchronised'
  | 'buffer_overflow'
  | 'udp_overloaded'
  | 'tls_handshake_failed';

export interface IngestMetrics {
  openConnections: Gauge;
  handshakes: Counter<'result'>;
  refusals: Counter<'reason' | 'transport'>;
  frames: Counter<'transport'>;
  records: Counter<'transport'>;
  invalidFrames: Counter<'transport' | 'code'>;
  crcErrors: Counter<'transport'>;
  bytesIn: Counter<'transport'>;
  xaddLatency: Histogram;
  xaddBatchSize: Histogram;
  ackLatency: Histogram<'transport'>;
  writeFailures: Counter;
  commands: Counter<'outcome'>;
  takeovers: Counter<'holder'>;
  closedByControl: Counter<'reason'>;
}

export function createIngestMetrics(registry: Registry): IngestMetrics {
  const registers = [registry];
  return {
    takeovers: new Counter({
      name: 'fleet_ingest_session_takeovers_total',
      help: 'Logins that replaced a live session of the same IMEI from another address (holder: this_instance / other_instance)',
      labelNames: ['holder'],
      registers,
    }),
    closedByControl: new Counter({
      name: 'fleet_ingest_sessions_closed_by_control_total',
      help: 'Live sessions closed because their device was disabled or its allowed networks changed',
      labelNames: ['reason'],
      registers,
    }),
    openConnections: new Gauge({
      name: 'fleet_ingest_open_connections',
      help: 'TCP connections currently open (any state)',
      registers,
    }),
    handshakes: new Counter({
      name: 'fleet_ingest_handshakes_total',
      help: 'IMEI handshakes by result (accepted / refused)',
      labelNames: ['result'],
      registers,
    }),
    refusals: new Counter({
      name: 'fleet_ingest_refusals_total',
      help: 'Connections, handshakes and datagrams refused, by reason',
      labelNames: ['reason', 'transport'],
      registers,
    }),
    frames: new Counter({
      name: 'fleet_ingest_frames_total',
      help: 'AVL frames written to the telemetry stream and acknowledged',
      labelNames: ['transport'],
      registers,
    }),
    records: new Counter({
      name: 'fleet_ingest_records_total',
      help: 'AVL records in acknowledged frames',
      labelNames: ['transport'],
      registers,
    }),
    invalidFrames: new Counter({
      name: 'fleet_ingest_invalid_frames_total',
      help: 'Frames answered with zero records, by protocol error code',
      labelNames: ['transport', 'code'],
      registers,
    }),
    crcErrors: new Counter({
      name: 'fleet_ingest_crc_errors_total',
      help: 'Frames whose CRC did not match (answered with zero records)',
      labelNames: ['transport'],
      registers,
    }),
    bytesIn: new Counter({
      name: 'fleet_ingest_bytes_in_total',
      help: 'Bytes received from devices',
      labelNames: ['transport'],
      registers,
    }),
    xaddLatency: new Histogram({
      name: 'fleet_ingest_xadd_seconds',
      help: 'Time for one pipelined XADD batch to be answered by Redis',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    xaddBatchSize: new Histogram({
      name: 'fleet_ingest_xadd_batch_entries',
      help: 'Entries per pipelined XADD batch',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
      registers,
    }),
    ackLatency: new Histogram({
      name: 'fleet_ingest_ack_seconds',
      help: 'From the last byte of a frame to its acknowledgement being written',
      labelNames: ['transport'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    writeFailures: new Counter({
      name: 'fleet_ingest_stream_write_failures_total',
      help: 'Frames not acknowledged because Redis did not confirm the write',
      registers,
    }),
    commands: new Counter({
      name: 'fleet_ingest_commands_total',
      help: 'Outbound command outcomes reported on commands:responses',
      labelNames: ['outcome'],
      registers,
    }),
  };
}
