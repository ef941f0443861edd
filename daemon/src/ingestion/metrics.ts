/** The ingestion role's Prometheus metrics, registered on a caller-supplied registry. */
import { Counter, Gauge, Histogram, type Metric, type Registry } from 'prom-client';
import type { Transport } from '../contract/index.js';

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

/**
 * What every frame adds to the frame, record and byte counters: plain numbers, moved into the
 * prom-client counters when these are read. prom-client's inc() with labels hashes the label set
 * and allocates on every call, which was a few % of the daemon's CPU per frame.
 */
export interface FrameTally {
  frames: number;
  records: number;
  bytesIn: number;
}

const TRANSPORTS: readonly Transport[] = ['tcp', 'udp'];

/**
 * A histogram observed once per frame (the ack latency): bucket counts per transport in typed
 * arrays, read in prom-client's format. prom-client's own observe() allocates a closure, an object
 * and the label hash on every call (~1.5 µs a frame).
 */
export class FrameHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<Transport, { counts: Float64Array; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {}

  observe(transport: Transport, seconds: number): void {
    let s = this.series.get(transport);
    if (!s) {
      s = { counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.series.set(transport, s);
    }
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > (b[i] as number)) i++;
    s.counts[i] = (s.counts[i] as number) + 1;
    s.sum += seconds;
    s.count++;
  }

  /** The same values a prom-client Histogram gives: cumulative `_bucket`s (le), `_sum`, `_count`. */
  async get() {
    const values: { value: number; labels: Record<string, string | number>; metricName: string }[] = [];
    for (const [transport, s] of this.series) {
      let cumulative = 0;
      for (let i = 0; i <= this.bounds.length; i++) {
        cumulative += s.counts[i] as number;
        const le = i < this.bounds.length ? (this.bounds[i] as number) : '+Inf';
        values.push({ value: cumulative, labels: { le, transport }, metricName: `${this.name}_bucket` });
      }
      values.push({ value: s.sum, labels: { transport }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { transport }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}

export interface IngestMetrics {
  /** Per-frame counts, flushed into `frames`, `records` and `bytesIn` when those are read. */
  tally: Record<Transport, FrameTally>;
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
  ackLatency: FrameHistogram;
  writeFailures: Counter;
  commands: Counter<'outcome'>;
  takeovers: Counter<'holder'>;
  closedByControl: Counter<'reason'>;
}

export function createIngestMetrics(registry: Registry): IngestMetrics {
  const registers = [registry];
  const tally: Record<Transport, FrameTally> = {
    tcp: { frames: 0, records: 0, bytesIn: 0 },
    udp: { frames: 0, records: 0, bytesIn: 0 },
  };
  /** A counter's collect(): adds what the frames tallied since the last read. */
  const flush = (field: keyof FrameTally) =>
    function (this: Counter<'transport'>) {
      for (const transport of TRANSPORTS) {
        const n = tally[transport][field];
        if (n === 0) continue;
        tally[transport][field] = 0;
        this.inc({ transport }, n);
      }
    };
  const ackLatency = new FrameHistogram(
    'fleet_ingest_ack_seconds',
    'From the last byte of a frame to its acknowledgement being written',
    [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  registry.registerMetric(ackLatency as unknown as Metric);
  return {
    tally,
    ackLatency,
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
      collect: flush('frames'),
    }),
    records: new Counter({
      name: 'fleet_ingest_records_total',
      help: 'AVL records in acknowledged frames',
      labelNames: ['transport'],
      registers,
      collect: flush('records'),
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
      collect: flush('bytesIn'),
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
