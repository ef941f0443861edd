/**
 * Fleet runner: many simulated devices against one server, with a summary of what was sent,
 * acknowledged and resent, ack latency percentiles and (on request) the exact set of acknowledged
 * records so end-to-end tests can compare them with what was stored.
 *
 * A process can hold ~19k sockets here (open files capped at 20,000), so large fleets are split
 * across worker processes (`fleet-worker.ts`), each running a slice of the device indices.
 */
import { fork } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { CODEC_8E } from '../protocol/index.js';
import { sleep } from '../sleep.js';
import { type DeviceCounters, emptyCounters, SimulatedDevice, type SimulatedDeviceOptions } from './device.js';
import { Histogram } from './histogram.js';
import { simulatedImei } from './imei.js';
import { deriveSeed } from './rng.js';
import type { LatLon } from './track.js';
import { SimulatedUdpDevice } from './udp-device.js';

export type Transport = 'tcp' | 'udp';
export type AnySimulatedDevice = SimulatedDevice | SimulatedUdpDevice;

export interface CreateDeviceOptions extends SimulatedDeviceOptions {
  transport?: Transport;
}

/** One simulated device (TCP unless `transport: 'udp'`). */
export function createSimulatedDevice(options: CreateDeviceOptions): AnySimulatedDevice {
  return options.transport === 'udp' ? new SimulatedUdpDevice(options) : new SimulatedDevice(options);
}

export interface FleetOptions {
  host: string;
  port: number;
  devices: number;
  /** Frames per second per device; 0 = next frame as soon as the previous one is acknowledged. */
  rate: number;
  /** Records per frame. */
  records: number;
  /** Seconds of sending after all devices connected; omitted = until `signal` aborts. */
  duration?: number;
  codec?: number;
  seed?: number;
  transport?: Transport;
  /** Index of the first device (workers run slices of one fleet). Default 0. */
  firstIndex?: number;
  /** Connect only, send nothing (idle-connection measurements). */
  idle?: boolean;
  /** Logins in progress at once during ramp-up. Default 200. */
  connectConcurrency?: number;
  /** Wait this long at the end for unacknowledged frames. Default 10 s. */
  drainMs?: number;
  ackTimeoutMs?: number;
  center?: LatLon;
  radiusKm?: number;
  /** Include every acknowledged record (IMEI + fix time) in the summary. */
  collectAcked?: boolean;
  /** Worker processes; forced up so that no process holds more than `maxDevicesPerProcess`. */
  processes?: number;
  maxDevicesPerProcess?: number;
  /** Called every `progressMs` (default 5 s) with the running totals. */
  onProgress?: (progress: FleetProgress) => void;
  progressMs?: number;
  /** Called once every device has logged in (or failed its first attempt). */
  onConnected?: (progress: FleetProgress) => void;
  signal?: AbortSignal;
  /** Sending starts only once this resolves (workers wait for every sibling's ramp-up). */
  startGate?: Promise<void>;
}

export interface FleetProgress {
  devices: number;
  connected: number;
  counters: DeviceCounters;
  elapsedMs: number;
}

export interface AckedRecordRef {
  imei: string;
  /** Fix time, epoch ms. */
  timestamp: number;
}

export interface FleetSummary {
  devices: number;
  processes: number;
  transport: Transport;
  codec: number;
  /** Devices logged in at the end of the sending phase. */
  connected: number;
  counters: DeviceCounters;
  /** Records still unacknowledged when the run ended. */
  unacked: number;
  rampMs: number;
  /** Simulator memory right after ramp-up, summed over its processes (bytes). */
  simulatorMemory: { rss: number; heapUsed: number };
  /** Sending phase (after ramp-up, before drain). */
  sendMs: number;
  /**
   * p99 event-loop delay of the simulator while sending (worst process), ms. Ack latency is
   * measured in the simulator, so a busy simulator inflates it by about this much.
   */
  simulatorLoopDelayP99Ms: number;
  durationMs: number;
  ackLatencyMs: { p50: number; p99: number; max: number; count: number };
  histogram: { counts: number[]; max: number; sum: number };
  acked?: AckedRecordRef[];
}

const DEFAULT_MAX_PER_PROCESS = 18_000;

function sumCounters(into: DeviceCounters, add: DeviceCounters): DeviceCounters {
  for (const k of Object.keys(into) as Array<keyof DeviceCounters>) into[k] += add[k];
  return into;
}

function latencySummary(h: Histogram): FleetSummary['ackLatencyMs'] {
  const ms = (us: number) => Math.round(us / 10) / 100;
  return { p50: ms(h.quantile(0.5)), p99: ms(h.quantile(0.99)), max: ms(h.max), count: h.count };
}

/** Runs a fleet and resolves with its summary (splitting into worker processes when needed). */
export async function runFleet(options: FleetOptions): Promise<FleetSummary> {
  const maxPer = options.maxDevicesPerProcess ?? DEFAULT_MAX_PER_PROCESS;
  const processes = Math.max(options.processes ?? 1, Math.ceil(options.devices / maxPer));
  if (processes > 1) return runFleetInWorkers(options, processes);
  return runFleetInProcess(options);
}

async function runFleetInProcess(options: FleetOptions): Promise<FleetSummary> {
  const started = performance.now();
  const seed = options.seed ?? 1;
  const first = options.firstIndex ?? 0;
  const codec = options.codec ?? CODEC_8E;
  const transport = options.transport ?? 'tcp';
  const histogram = new Histogram();
  const acked: AckedRecordRef[] | undefined = options.collectAcked ? [] : undefined;
  const devices: AnySimulatedDevice[] = [];
  let sending = false;

  for (let i = 0; i < options.devices; i++) {
    const index = first + i;
    const device = createSimulatedDevice({
      transport,
      imei: simulatedImei(seed, index),
      host: options.host,
      port: options.port,
      codec,
      seed: deriveSeed(seed, index),
      center: options.center,
      radiusKm: options.radiusKm,
      ackTimeoutMs: options.ackTimeoutMs,
    });
    device.on('acked', (a: { count: number; timestamps: number[]; latencyUs: number }) => {
      histogram.record(a.latencyUs);
      if (acked) for (const timestamp of a.timestamps) acked.push({ imei: device.imei, timestamp });
      // Closed loop: the next frame goes out as soon as this one is acknowledged.
      if (sending && options.rate <= 0 && !options.idle && device.pendingRecords === 0) device.enqueue(options.records);
    });
    devices.push(device);
  }

  const progress = (): FleetProgress => ({
    devices: devices.length,
    connected: devices.reduce((n, d) => n + (d.connected ? 1 : 0), 0),
    counters: devices.reduce((c, d) => sumCounters(c, d.counters), emptyCounters()),
    elapsedMs: Math.round(performance.now() - started),
  });
  const ticker = options.onProgress
    ? setInterval(() => options.onProgress?.(progress()), options.progressMs ?? 5000)
    : null;

  // Ramp-up: a bounded number of logins in flight so the server's accept backlog is not flooded.
  let next = 0;
  const worker = async () => {
    while (next < devices.length && !options.signal?.aborted) {
      const d = devices[next++]!;
      await d.connect().catch(() => false);
    }
  };
  await Promise.all(Array.from({ length: Math.min(devices.length, options.connectConcurrency ?? 200) }, worker));
  const rampMs = performance.now() - started;
  const { rss, heapUsed } = process.memoryUsage();
  options.onConnected?.(progress());
  if (options.startGate) await Promise.race([options.startGate, sleep(2 ** 31 - 1, options.signal)]);

  // Sending phase.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 });
  loopDelay.enable();
  const sendStart = performance.now();
  sending = !options.idle;
  const timers: NodeJS.Timeout[] = [];
  if (sending) {
    if (options.rate > 0) {
      const period = 1000 / options.rate;
      // Cap the backlog per device (a real device's flash buffer) so a dead server cannot eat memory.
      const maxPending = options.records * 1000;
      devices.forEach((d, i) => {
        const tick = () => {
          if (d.pendingRecords < maxPending) d.enqueue(options.records);
        };
        // Spread the first sends evenly over one period.
        const t = setTimeout(
          () => {
            tick();
            timers.push(setInterval(tick, period));
          },
          (period * i) / devices.length,
        );
        timers.push(t);
      });
    } else {
      for (const d of devices) d.enqueue(options.records);
    }
  }
  if (options.duration !== undefined) await sleep(options.duration * 1000, options.signal);
  else await sleep(2 ** 31 - 1, options.signal);
  sending = false;
  for (const t of timers) clearTimeout(t);
  const sendMs = performance.now() - sendStart;
  loopDelay.disable();
  const connected = devices.reduce((n, d) => n + (d.connected ? 1 : 0), 0);

  // Drain: give in-flight and queued frames a chance to be acknowledged.
  const drainUntil = performance.now() + (options.drainMs ?? 10_000);
  while (performance.now() < drainUntil && devices.some((d) => d.pendingRecords > 0 && d.connected)) {
    await sleep(50);
  }
  if (ticker) clearInterval(ticker);
  const counters = devices.reduce((c, d) => sumCounters(c, d.counters), emptyCounters());
  const unacked = devices.reduce((n, d) => n + d.pendingRecords, 0);
  await Promise.all(devices.map((d) => d.close()));

  return {
    devices: devices.length,
    processes: 1,
    transport,
    codec,
    connected,
    counters,
    unacked,
    rampMs: Math.round(rampMs),
    simulatorMemory: { rss, heapUsed },
    sendMs: Math.round(sendMs),
    simulatorLoopDelayP99Ms: Math.round(loopDelay.percentile(99) / 1e4) / 100,
    durationMs: Math.round(performance.now() - started),
    ackLatencyMs: latencySummary(histogram),
    histogram: histogram.toJSON(),
    acked,
  };
}

/** Messages between the parent and `fleet-worker.ts`. */
export type WorkerMessage =
  | { type: 'progress'; progress: FleetProgress }
  | { type: 'connected'; progress: FleetProgress }
  | { type: 'summary'; summary: FleetSummary }
  | { type: 'error'; message: string };

export type ParentMessage =
  | { type: 'start'; options: Omit<FleetOptions, 'onProgress' | 'onConnected' | 'signal' | 'processes' | 'startGate'> }
  | { type: 'stop' }
  | { type: 'go' };

function workerEntry(): { file: string; execArgv: string[] } {
  const file = fileURLToPath(
    new URL(`./fleet-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
  );
  // Sources run through tsx; a compiled build runs as plain JS.
  return { file, execArgv: file.endsWith('.ts') ? ['--import', 'tsx'] : [] };
}

async function runFleetInWorkers(options: FleetOptions, processes: number): Promise<FleetSummary> {
  const started = performance.now();
  const { file, execArgv } = workerEntry();
  const base = Math.floor(options.devices / processes);
  const extra = options.devices % processes;
  const { onProgress, onConnected, signal, processes: _p, startGate: _g, ...plain } = options;
  const latest: FleetProgress[] = [];
  const connectedSeen = new Set<number>();
  let firstIndex = options.firstIndex ?? 0;

  const merged = (): FleetProgress => ({
    devices: options.devices,
    connected: latest.reduce((n, p) => n + p.connected, 0),
    counters: latest.reduce((c, p) => sumCounters(c, p.counters), emptyCounters()),
    elapsedMs: Math.round(performance.now() - started),
  });

  const children = Array.from({ length: processes }, (_, w) => {
    const count = base + (w < extra ? 1 : 0);
    const slice = { ...plain, devices: count, firstIndex, processes: 1 };
    firstIndex += count;
    latest[w] = { devices: count, connected: 0, counters: emptyCounters(), elapsedMs: 0 };
    const child = fork(file, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const done = new Promise<FleetSummary>((resolve, reject) => {
      child.on('message', (m: WorkerMessage) => {
        if (m.type === 'progress') latest[w] = m.progress;
        else if (m.type === 'connected') {
          latest[w] = m.progress;
          connectedSeen.add(w);
          // Every worker holds its sockets before anyone starts sending: one ramp, one send phase.
          if (connectedSeen.size === processes) {
            onConnected?.(merged());
            for (const c of children) c.child.send({ type: 'go' } satisfies ParentMessage);
          }
        } else if (m.type === 'summary') resolve(m.summary);
        else if (m.type === 'error') reject(new Error(`fleet worker ${w}: ${m.message}`));
      });
      // 'close' comes after the IPC channel is drained, so a summary sent just before exit is seen.
      child.on('close', (code) => reject(new Error(`fleet worker ${w} exited with code ${code} before its summary`)));
    });
    child.send({ type: 'start', options: slice } satisfies ParentMessage);
    return { child, done };
  });

  const ticker = onProgress ? setInterval(() => onProgress(merged()), options.progressMs ?? 5000) : null;
  const stop = () => {
    for (const c of children) if (c.child.connected) c.child.send({ type: 'stop' } satisfies ParentMessage);
  };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    const summaries = await Promise.all(children.map((c) => c.done));
    const histogram = new Histogram();
    for (const s of summaries) histogram.merge(s.histogram);
    const counters = summaries.reduce((c, s) => sumCounters(c, s.counters), emptyCounters());
    return {
      devices: options.devices,
      processes,
      transport: options.transport ?? 'tcp',
      codec: options.codec ?? CODEC_8E,
      connected: summaries.reduce((n, s) => n + s.connected, 0),
      counters,
      unacked: summaries.reduce((n, s) => n + s.unacked, 0),
      rampMs: Math.max(...summaries.map((s) => s.rampMs)),
      simulatorMemory: {
        rss: summaries.reduce((n, s) => n + s.simulatorMemory.rss, 0),
        heapUsed: summaries.reduce((n, s) => n + s.simulatorMemory.heapUsed, 0),
      },
      sendMs: Math.max(...summaries.map((s) => s.sendMs)),
      simulatorLoopDelayP99Ms: Math.max(...summaries.map((s) => s.simulatorLoopDelayP99Ms)),
      durationMs: Math.round(performance.now() - started),
      ackLatencyMs: latencySummary(histogram),
      histogram: histogram.toJSON(),
      acked: options.collectAcked ? summaries.flatMap((s) => s.acked ?? []) : undefined,
    };
  } finally {
    if (ticker) clearInterval(ticker);
    signal?.removeEventListener('abort', stop);
    for (const c of children) if (c.child.exitCode === null) c.child.kill();
  }
}
