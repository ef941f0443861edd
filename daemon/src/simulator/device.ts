/**
 * A simulated Teltonika device on TCP: logs in with its IMEI, sends AVL frames one at a time and
 * waits for the 4-byte acknowledgement (stop-and-wait, as FMB firmware does), keeps every record
 * until it is acknowledged, resends on a wrong count, an ack timeout or a reconnect, backs off when
 * refused, and answers Codec 12 commands with FMB-like replies on the same socket.
 *
 * Usable as a library (tests, benchmarks) and by the fleet runner behind `npm run simulate`.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { COMMAND_FRAME_OVERHEAD_BYTES, MAX_COMMAND_BYTES } from '../contract/limits.js';
import {
  type AvlRecord,
  CODEC_8E,
  CODEC_12,
  CODEC_14,
  decodeCommandFrame,
  encodeAvlFrame,
  encodeCodec12Response,
  encodeCodec14Response,
  encodeImeiLogin,
} from '../protocol/index.js';
import { commandReply, type DeviceIdentity } from './commands.js';
import { type LatLon, Track } from './track.js';

export interface DeviceCounters {
  /** Records transmitted at least once. */
  recordsSent: number;
  /** Records whose frame was acknowledged with the right count. */
  recordsAcked: number;
  /** Record retransmissions (a record sent 3 times counts 2). */
  recordsResent: number;
  framesSent: number;
  framesAcked: number;
  framesResent: number;
  /** Acks whose count differed from the frame's record count (incl. 0 = refused packet). */
  wrongAcks: number;
  ackTimeouts: number;
  /** Logins answered with 0x00. */
  refusals: number;
  /** Connections opened after the first one. */
  reconnects: number;
  connectErrors: number;
  commandsAnswered: number;
}

export function emptyCounters(): DeviceCounters {
  return {
    recordsSent: 0,
    recordsAcked: 0,
    recordsResent: 0,
    framesSent: 0,
    framesAcked: 0,
    framesResent: 0,
    wrongAcks: 0,
    ackTimeouts: 0,
    refusals: 0,
    reconnects: 0,
    connectErrors: 0,
    commandsAnswered: 0,
  };
}

/** What the TCP and UDP devices keep of a packet between sending it and its acknowledgement. */
interface AckablePacket {
  count: number;
  /** process.hrtime.bigint() when it was last sent. */
  sentAt: bigint;
  timestamps: number[];
  records: AvlRecord[] | null;
  attempts: number;
  resolve: ((acked: AckedFrame) => void) | null;
}

/** Counts a packet going out (first sending or resend) as one more attempt. */
export function countAttempt(counters: DeviceCounters, p: AckablePacket): void {
  if (p.attempts === 0) counters.recordsSent += p.count;
  else {
    counters.framesResent++;
    counters.recordsResent += p.count;
  }
  p.attempts++;
}

/** Counts and announces a packet the server acknowledged in full, and settles its promise. */
export function reportAcked(device: EventEmitter, counters: DeviceCounters, p: AckablePacket, latencyUs: number): void {
  counters.framesAcked++;
  counters.recordsAcked += p.count;
  device.emit('acked', { count: p.count, timestamps: p.timestamps, attempts: p.attempts, latencyUs });
  p.resolve?.({ records: p.records ?? [], attempts: p.attempts, latencyUs });
}

/**
 * Takes the server's answer for the in-flight packet `p` (the head of `queue`): when it accepted
 * every record the packet is removed, counted and announced, and null is returned; otherwise the
 * wrong ack is counted and the latency is returned (the caller decides what to send again).
 */
export function takeAck(
  device: EventEmitter,
  counters: DeviceCounters,
  queue: AckablePacket[],
  p: AckablePacket,
  accepted: number,
): number | null {
  const latencyUs = Number(process.hrtime.bigint() - p.sentAt) / 1000;
  if (accepted === p.count) {
    queue.shift();
    reportAcked(device, counters, p, latencyUs);
    return null;
  }
  counters.wrongAcks++;
  return latencyUs;
}

/** What the TCP and UDP devices derive from their options alike: codec, clock, seed and track. */
export function deviceBasics(o: SimulatedDeviceOptions): {
  codec: number;
  now: () => number;
  seed: number;
  track: Track;
} {
  const now = o.now ?? Date.now;
  const seed = o.seed ?? Number(o.imei.slice(-9));
  return {
    codec: o.codec ?? CODEC_8E,
    now,
    seed,
    track: new Track({ seed, center: o.center, radiusKm: o.radiusKm }, now()),
  };
}

/** The pause before a packet the server refused is sent again: longer with each attempt, up to 8 times the base. */
export function resendDelayMs(opts: SimulatedDeviceOptions, attempts: number): number {
  return (opts.resendDelayMs ?? 500) * Math.min(8, attempts);
}

export interface SimulatedDeviceOptions {
  imei: string;
  host: string;
  port: number;
  /** AVL codec for data frames: 0x08, 0x8E (default) or 0x10. */
  codec?: number;
  /** Seed of the track generator (default: derived from the IMEI). */
  seed?: number;
  center?: LatLon;
  radiusKm?: number;
  /** "Server response timeout": no ack within this → close, reconnect, resend. Default 10 s. */
  ackTimeoutMs?: number;
  /** Handshake reply timeout. Default 10 s. */
  loginTimeoutMs?: number;
  /** Reconnect delay after an established link was lost (±50% jitter). Default 250 ms. */
  reconnectDelayMs?: number;
  /** First back-off after a refused or failed login; doubles up to `maxBackoffMs`. Default 1 s. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Delay before resending after a wrong ack count. Default 500 ms. */
  resendDelayMs?: number;
  /** Reconnect after a lost connection or refusal (default true). */
  autoReconnect?: boolean;
  /** Answer Codec 12/14 commands (default true). */
  answerCommands?: boolean;
  /** Answer commands after this delay (tests of command timeouts / ordering). Default 0. */
  commandReplyDelayMs?: number;
  /** Overrides the reply text; return null to stay silent (a device ignoring the command). */
  onCommand?: (command: string) => string | null | undefined;
  /** Clock for fix times (inject for repeatable records). */
  now?: () => number;
  model?: string;
  firmware?: string;
}

/** What `sendRecords` resolves with once the frame was acknowledged. */
export interface AckedFrame {
  records: AvlRecord[];
  /** Transmissions of the frame it took (1 = acked first time). */
  attempts: number;
  /** Write of the last transmission → ack, in microseconds. */
  latencyUs: number;
}

export interface AnsweredCommand {
  command: string;
  reply: string;
  at: number;
}

export class DeviceClosedError extends Error {
  override name = 'DeviceClosedError';
}

interface Packet {
  frame: Buffer;
  count: number;
  timestamps: number[];
  records: AvlRecord[] | null;
  attempts: number;
  sentAt: bigint;
  resolve: ((acked: AckedFrame) => void) | null;
  reject: ((err: Error) => void) | null;
}

type State = 'idle' | 'connecting' | 'login' | 'ready' | 'backoff' | 'closed';

/** Longest command frame a device accepts from the server (bytes of data field). */
const MAX_COMMAND_DATA_BYTES = MAX_COMMAND_BYTES + COMMAND_FRAME_OVERHEAD_BYTES;

/**
 * Events: 'connected' (login accepted), 'refused', 'disconnected', 'acked' (AckedFrame-like
 * { count, timestamps, attempts, latencyUs }), 'command' (AnsweredCommand), 'error' is never emitted.
 */
export class SimulatedDevice extends EventEmitter {
  readonly imei: string;
  readonly counters: DeviceCounters = emptyCounters();
  /** Last answered commands (at most 100). */
  readonly answered: AnsweredCommand[] = [];
  readonly track: Track;
  private readonly opts: SimulatedDeviceOptions;
  private readonly identity: DeviceIdentity;
  private readonly codec: number;
  private readonly now: () => number;
  private socket: Socket | null = null;
  private state: State = 'idle';
  private rx: Buffer | null = null;
  private queue: Packet[] = [];
  private inFlight: Packet | null = null;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private connections = 0;
  private loginWaiters: Array<(accepted: boolean) => void> = [];

  constructor(options: SimulatedDeviceOptions) {
    super();
    this.opts = options;
    this.imei = options.imei;
    ({ codec: this.codec, now: this.now, track: this.track } = deviceBasics(options));
    this.identity = {
      imei: options.imei,
      model: options.model ?? 'FMB920',
      firmware: options.firmware ?? '03.29.00.Rev.04',
      bootedAt: this.now() - 3_600_000,
      params: new Map(),
    };
  }

  get connected(): boolean {
    return this.state === 'ready';
  }

  /** Records generated but not yet acknowledged (in flight + queued). */
  get pendingRecords(): number {
    let n = this.inFlight?.count ?? 0;
    for (const p of this.queue) if (p !== this.inFlight) n += p.count;
    return n;
  }

  /**
   * Opens the connection and logs in. Resolves true when the server accepted the IMEI, false when it
   * refused it or the connection failed (with `autoReconnect` the device keeps retrying with
   * back-off in the background).
   */
  connect(): Promise<boolean> {
    if (this.state === 'closed') return Promise.reject(new DeviceClosedError(`device ${this.imei} is closed`));
    if (this.connected) return Promise.resolve(true);
    const p = new Promise<boolean>((resolve) => this.loginWaiters.push(resolve));
    if (this.state === 'idle') this.open();
    return p;
  }

  /**
   * Generates `n` records now and sends them as one frame after those queued before it. Resolves
   * when the frame is acknowledged (after any resends); rejects if the device is closed first.
   */
  sendRecords(n: number): Promise<AckedFrame> {
    return this.sendFrame(this.track.nextRecords(n, this.now()));
  }

  /** Sends given records as one frame (e.g. hand-made records in a test). */
  sendFrame(records: AvlRecord[]): Promise<AckedFrame> {
    return new Promise<AckedFrame>((resolve, reject) => {
      this.enqueuePacket(records, true, resolve, reject);
    });
  }

  /** Queues `n` new records without keeping the record objects (fleet use: less memory). */
  enqueue(n: number): void {
    this.enqueuePacket(this.track.nextRecords(n, this.now()), false, null, null);
  }

  /** Writes raw bytes (tests of malformed input). */
  writeRaw(bytes: Uint8Array): void {
    this.socket?.write(bytes);
  }

  /** Drops the connection (RST with `reset`, else FIN); the device reconnects and resends. */
  disconnect(reset = false): void {
    const s = this.socket;
    if (!s) return;
    if (reset) s.resetAndDestroy();
    else s.destroy();
  }

  /** Closes gracefully (FIN); unacknowledged frames are rejected with DeviceClosedError. */
  async close(): Promise<void> {
    const s = this.shutdown();
    if (s && !s.destroyed) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.end();
        setTimeout(() => s.destroy(), 1000).unref();
      });
    }
  }

  /** Dies like a device losing power: the socket is reset (no FIN), nothing more is sent. */
  kill(): void {
    const s = this.shutdown();
    if (s && !s.destroyed) s.resetAndDestroy();
  }

  private shutdown(): Socket | null {
    if (this.state === 'closed') return null;
    this.state = 'closed';
    this.clearTimer();
    const err = new DeviceClosedError(`device ${this.imei} closed with ${this.pendingRecords} unacknowledged records`);
    const pending = this.inFlight ? [this.inFlight, ...this.queue.filter((p) => p !== this.inFlight)] : this.queue;
    this.queue = [];
    this.inFlight = null;
    for (const p of pending) p.reject?.(err);
    for (const w of this.loginWaiters.splice(0)) w(false);
    const s = this.socket;
    this.socket = null;
    return s;
  }

  private enqueuePacket(
    records: AvlRecord[],
    keep: boolean,
    resolve: Packet['resolve'],
    reject: Packet['reject'],
  ): void {
    if (this.state === 'closed') {
      reject?.(new DeviceClosedError(`device ${this.imei} is closed`));
      return;
    }
    this.queue.push({
      frame: encodeAvlFrame(this.codec, records),
      count: records.length,
      timestamps: records.map((r) => r.timestamp),
      records: keep ? records : null,
      attempts: 0,
      sentAt: 0n,
      resolve,
      reject,
    });
    if (this.state === 'idle' && this.opts.autoReconnect !== false) this.open();
    else this.pump();
  }

  private open(): void {
    this.state = 'connecting';
    this.rx = null;
    if (this.connections++ > 0) this.counters.reconnects++;
    const socket = netConnect({ host: this.opts.host, port: this.opts.port, noDelay: true });
    this.socket = socket;
    socket.on('connect', () => {
      if (this.socket !== socket) return;
      this.state = 'login';
      socket.write(encodeImeiLogin(this.imei));
      this.armTimer(this.opts.loginTimeoutMs ?? 10_000, () => socket.destroy());
    });
    socket.on('data', (chunk: Buffer) => {
      if (this.socket === socket) this.onData(chunk);
    });
    socket.on('error', () => {
      if (this.socket === socket && this.state === 'connecting') this.counters.connectErrors++;
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.onLost();
    });
  }

  private onLost(): void {
    this.clearTimer();
    const wasLogin = this.state === 'login' || this.state === 'connecting';
    this.state = 'idle';
    // Whatever was in flight is sent again on the next connection.
    this.inFlight = null;
    this.emit('disconnected');
    if (wasLogin) {
      this.failures++;
      for (const w of this.loginWaiters.splice(0)) w(false);
    }
    if (this.opts.autoReconnect === false) return;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const base = this.opts.backoffMs ?? 1000;
    const max = this.opts.maxBackoffMs ?? 60_000;
    // A link lost after a good login is retried soon; failed logins back off exponentially.
    const delay =
      this.failures === 0
        ? (this.opts.reconnectDelayMs ?? 250)
        : Math.min(max, base * 2 ** Math.min(this.failures - 1, 16));
    // Jitter keeps a fleet (refused, or dropped by a restarting server) from reconnecting in lock-step.
    const jittered = delay * (0.5 + Math.random());
    this.state = 'backoff';
    this.armTimer(jittered, () => {
      if (this.state === 'backoff') this.open();
    });
  }

  private onData(chunk: Buffer): void {
    this.rx = this.rx === null || this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    const rx = this.rx;
    let off = 0;
    while (off < rx.length && this.socket) {
      if (this.state === 'login') {
        const accepted = rx[off] === 0x01;
        off++;
        this.clearTimer();
        if (accepted) {
          this.state = 'ready';
          this.failures = 0;
          this.emit('connected');
          for (const w of this.loginWaiters.splice(0)) w(true);
          this.pump();
        } else {
          this.counters.refusals++; // back-off grows in onLost
          this.emit('refused');
          for (const w of this.loginWaiters.splice(0)) w(false);
          this.socket.destroy();
          return;
        }
        continue;
      }
      const avail = rx.length - off;
      if (avail < 4) break;
      const first = rx.readUInt32BE(off);
      if (first !== 0) {
        // A non-zero 4-byte word is an AVL ack count.
        off += 4;
        this.onAck(first);
        continue;
      }
      // Zero word: a refused packet (ack 0) or the preamble of a command frame. A command frame is
      // written whole, so when the codec byte is there and says "command", it is one.
      if (avail >= 9 && (rx[off + 8] === CODEC_12 || rx[off + 8] === CODEC_14)) {
        const d = rx.readUInt32BE(off + 4);
        if (d > MAX_COMMAND_DATA_BYTES) {
          this.socket.destroy();
          return;
        }
        if (avail < d + 12) break;
        this.onCommandFrame(rx.subarray(off, off + d + 12));
        off += d + 12;
        continue;
      }
      if (this.inFlight && (avail === 4 || avail >= 9)) {
        off += 4;
        this.onAck(0);
        continue;
      }
      if (avail >= 9) {
        // Zeros with no frame in flight and no command codec: the server is out of sync with us.
        this.socket.destroy();
        return;
      }
      break;
    }
    this.rx = off >= rx.length ? null : Buffer.from(rx.subarray(off));
  }

  private onAck(count: number): void {
    const p = this.inFlight;
    if (!p) return; // stray ack: nothing to match, ignore as firmware does
    this.clearTimer();
    this.inFlight = null;
    if (takeAck(this, this.counters, this.queue, p, count) === null) {
      this.pump();
      return;
    }
    // Wrong count (0 = server refused the packet): keep the records and send the frame again.
    this.state = 'ready';
    const delay = resendDelayMs(this.opts, p.attempts);
    this.armTimer(delay, () => this.pump());
  }

  private onCommandFrame(bytes: Buffer): void {
    let text: string;
    let codec: number;
    try {
      const frame = decodeCommandFrame(bytes);
      if ((frame.codec !== CODEC_12 && frame.codec !== CODEC_14) || frame.type !== 0x05) return;
      if (this.opts.answerCommands === false || !this.socket) return;
      if (frame.codec === CODEC_14 && frame.imei !== this.imei) {
        // Codec 14 addressed to another IMEI: not executed, nACK carrying our own IMEI.
        this.socket.write(encodeCodec14Response(this.imei, null));
        return;
      }
      codec = frame.codec;
      text = frame.payload.toString('latin1');
    } catch {
      return; // a corrupt command is ignored, as a device would
    }
    const custom = this.opts.onCommand?.(text);
    if (custom === null) return;
    const reply = custom ?? commandReply(text, this.identity, this.track, this.now());
    const socket = this.socket;
    if (!socket) return;
    const answer = () => {
      if (socket.destroyed || this.socket !== socket) return;
      socket.write(codec === CODEC_14 ? encodeCodec14Response(this.imei, reply) : encodeCodec12Response(reply));
      this.counters.commandsAnswered++;
      const answered = { command: text, reply, at: this.now() };
      this.answered.push(answered);
      if (this.answered.length > 100) this.answered.shift();
      this.emit('command', answered);
    };
    const delay = this.opts.commandReplyDelayMs ?? 0;
    if (delay > 0) setTimeout(answer, delay);
    else answer();
  }

  private pump(): void {
    if (this.state !== 'ready' || this.inFlight || this.timer || !this.socket) return;
    const p = this.queue[0];
    if (!p) return;
    this.inFlight = p;
    countAttempt(this.counters, p);
    this.counters.framesSent++;
    p.sentAt = process.hrtime.bigint();
    this.socket.write(p.frame);
    const socket = this.socket;
    this.armTimer(this.opts.ackTimeoutMs ?? 10_000, () => {
      this.counters.ackTimeouts++;
      // As FMB firmware: give up on this link, reconnect, send the same records again.
      socket.destroy();
    });
  }

  private armTimer(ms: number, fn: () => void): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
