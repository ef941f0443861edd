/**
 * One TCP device connection: a small state machine (awaiting-imei → active → closed) fed by the
 * framer. Work runs strictly in order on one queue per socket: a frame's acknowledgement is written
 * only after its XADD was confirmed, and a command is written only after the ack before it. Bytes
 * arriving while that queue is busy pause the socket until it is done, so one socket never buffers
 * more than a read or two; a stop-and-wait device (the normal case) sends nothing while it waits for
 * its ack, so its socket is never paused and resumed (two stream-state changes per frame otherwise).
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { encodeTelemetryEntry, type RedisKeys } from '../contract/index.js';
import {
  avlAck,
  checkAvlFrame,
  handshakeAck,
  isCommandCodec,
  isProtocolError,
  type ProtocolErrorCode,
  type TcpFrame,
  TcpFramer,
} from '../protocol/index.js';
import { admitDevice, type DeviceLookup } from './devices.js';
import type { IngestMetrics, RefusalReason } from './metrics.js';
import type { DeviceRegistry, Holder, Takeover } from './registry.js';
import type { EntrySink, StreamWriter } from './stream-writer.js';
import type { TakeoverRecorder } from './takeover.js';

export interface SessionLimits {
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  idleTimeoutMs: number;
  maxBufferedBytes: number;
  /** A frame that has started must be complete within this long (slow senders). */
  frameTimeoutMs: number;
}

export interface SessionHooks {
  /** The device is now held by this session (handshake accepted and registered). */
  onActive?(session: TcpSession): void;
  /** A Codec 12/13/14/15 frame arrived (never acknowledged with a record count). */
  onCommandFrame?(session: TcpSession, frame: Buffer): void;
  onClosed?(session: TcpSession, reason: string): void;
}

export interface SessionDeps {
  instanceId: string;
  keys: RedisKeys;
  logger: Logger;
  metrics: IngestMetrics;
  lookup: DeviceLookup;
  registry: DeviceRegistry<TcpSession>;
  writer: StreamWriter;
  limits: SessionLimits;
  hooks: SessionHooks;
  /** Records a takeover from another address as an `events` row (none when absent). */
  recordTakeover?: TakeoverRecorder;
}

/** Protocol errors that close a connection, as refusal reasons (others: `desynchronised`). */
const PROTOCOL_REFUSALS: Partial<Record<ProtocolErrorCode, RefusalReason>> = {
  LENGTH_EXCEEDED: 'frame_too_large',
  EXPECTED_LOGIN: 'frame_before_handshake',
  BAD_IMEI: 'bad_imei',
};

/** The address part of `address:port` (IPv6 addresses contain colons too). */
function addressOf(remote: string): string {
  return remote.slice(0, remote.lastIndexOf(':'));
}

export type SessionState = 'awaiting-imei' | 'checking' | 'active' | 'closed';

type Task = () => Promise<void>;

/** A frame waiting its turn on the queue, with when its last byte arrived. */
interface QueuedFrame {
  readonly frame: TcpFrame;
  readonly receivedAt: number;
  readonly t0: number;
}

/**
 * The frames of one read, reused by every session: they are moved to the session's queue before
 * anything else runs, so one array serves all reads instead of a new one per read.
 */
const READ_FRAMES: TcpFrame[] = [];

/** Every possible AVL ack (the record count is one byte), allocated once instead of per frame. */
const AVL_ACKS: readonly Buffer[] = Array.from({ length: 256 }, (_, n) => avlAck(n));

export class TcpSession implements Holder, EntrySink {
  state: SessionState = 'awaiting-imei';
  imei = '';
  readonly remote: string;
  readonly remoteAddress: string;
  closeReason = '';
  /** Settles once the session is closed and its registry entry released. */
  readonly closed: Promise<void>;

  private log: Logger;
  private readonly framer: TcpFramer;
  /**
   * The socket's work in order: frames, and tasks (the login, commands). Frames run without a
   * promise or closure of their own: the session is its own stream-writer sink, and at most one
   * item is in progress (`busy`) while Redis or a task is awaited.
   */
  private readonly queue: (QueuedFrame | Task)[] = [];
  private busy = false;
  /** Set while Redis has the frame in progress: its record count and when it was received. */
  private inFlightRecords = 0;
  private inFlightT0 = 0;
  /** Waiting (shutdown) for the item in progress to finish. */
  private readonly idleWaiters: (() => void)[] = [];
  private handshakeTimer: NodeJS.Timeout | null = null;
  private frameTimer: NodeJS.Timeout | null = null;
  /**
   * Idle timeout, checked lazily: reads only note the time, and the timer, when it fires, closes
   * the session or re-arms for the rest. A socket timeout would move a timer on every read and
   * every ack write (a few % of the CPU per frame).
   */
  private idleTimer: NodeJS.Timeout | null = null;
  private lastRead = 0;
  private draining = false;
  private resolveClosed!: () => void;

  /**
   * `peer`: the device's own address when a trusted load balancer relayed the connection (its
   * PROXY protocol header); `initial`: device bytes that arrived behind that header.
   */
  constructor(
    private readonly socket: Socket,
    private readonly deps: SessionDeps,
    peer?: { address: string; port: number },
    initial?: Buffer,
  ) {
    this.remoteAddress = peer?.address ?? socket.remoteAddress ?? 'unknown';
    this.remote = `${this.remoteAddress}:${peer?.port ?? socket.remotePort ?? 0}`;
    this.log = deps.logger.child({ remote: this.remote });
    this.framer = new TcpFramer({ maxFrameBytes: deps.limits.maxFrameBytes, loginFirst: true });
    this.closed = new Promise((r) => {
      this.resolveClosed = r;
    });

    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    this.lastRead = Date.now();
    this.armIdleTimer(deps.limits.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.log.debug({ err }, 'socket error');
      this.close('error');
    });
    socket.on('close', () => this.close(this.draining ? 'shutdown' : 'closed'));
    this.handshakeTimer = setTimeout(() => this.refuse('handshake_timeout'), deps.limits.handshakeTimeoutMs);
    if (initial && initial.length > 0) this.onData(initial);
  }

  /** Runs `task` on this socket's queue (after every frame and ack queued before it). */
  enqueue(task: Task): boolean {
    if (this.state === 'closed' || this.draining) return false;
    this.queue.push(task);
    this.drain();
    return true;
  }

  /** Writes bytes to the device now (call from a queued task). False once the socket is gone. */
  write(bytes: Buffer): boolean {
    if (this.state === 'closed' || this.socket.destroyed) return false;
    this.socket.write(bytes);
    return true;
  }

  /** Holder: a newer connection for the same IMEI took over. */
  replaced(): void {
    this.log.info('replaced by a newer connection from the same device');
    this.close('replaced');
  }

  /**
   * Graceful stop (of the server, or of this device's session when it is no longer admitted):
   * read nothing more, let the task already running (a frame awaiting its XADD
   * and ack) finish, drop frames not yet started (they were never acked; the device resends), close.
   */
  async shutdown(reason = 'shutdown'): Promise<void> {
    if (this.state === 'closed') return this.closed;
    this.draining = true;
    this.socket.pause();
    this.queue.length = 0;
    if (this.busy) await new Promise<void>((r) => this.idleWaiters.push(r));
    this.close(reason);
    return this.closed;
  }

  /** Closes the session once nothing was read for idleTimeoutMs. */
  private armIdleTimer(ms: number): void {
    this.idleTimer = setTimeout(() => {
      const idleMs = this.deps.limits.idleTimeoutMs;
      const quiet = Date.now() - this.lastRead;
      if (quiet < idleMs) return this.armIdleTimer(idleMs - quiet);
      this.log.info({ idleMs }, 'idle timeout');
      this.close('idle');
    }, ms);
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed' || this.draining) return;
    const receivedAt = Date.now();
    this.lastRead = receivedAt;
    const t0 = performance.now();
    this.deps.metrics.tally.tcp.bytesIn += chunk.length;
    const frames = READ_FRAMES;
    try {
      this.framer.push(chunk, frames);
    } catch (err) {
      frames.length = 0;
      if (isProtocolError(err)) {
        this.refuse(PROTOCOL_REFUSALS[err.code] ?? 'desynchronised', { error: err.message });
        return;
      }
      throw err;
    }
    for (let i = 0; i < frames.length; i++) this.queue.push({ frame: frames[i] as TcpFrame, receivedAt, t0 });
    frames.length = 0;
    if (this.framer.buffered > this.deps.limits.maxBufferedBytes) {
      this.refuse('buffer_overflow', { buffered: this.framer.buffered });
      return;
    }
    // Still busy with earlier work: stop reading until it is done (resumed when the queue empties).
    if (this.busy) this.socket.pause();
    this.drain();
    this.armFrameTimer();
  }

  /**
   * Runs queued items in order until one has to wait (a frame's XADD, a task's promise); that
   * item's completion calls drain() again. With the queue empty, reads again. Re-entrant: a nested
   * call (an item queueing more work) takes items from the same head, so order holds.
   */
  private drain(): void {
    if (this.busy) return;
    if (this.queue.length > 0) this.clearFrameTimer();
    while (this.queue.length > 0 && this.state !== 'closed') {
      const item = this.queue.shift() as QueuedFrame | Task;
      try {
        if (typeof item === 'function') this.wait(item());
        else this.handle(item.frame, item.receivedAt, item.t0);
      } catch (err) {
        this.log.error({ err }, 'session task failed');
        this.close('error');
      }
      if (this.busy) return;
    }
    this.idle();
  }

  /** The item in progress finished (or there was none): wake a shutdown, or read again. */
  private idle(): void {
    if (this.idleWaiters.length > 0) for (const w of this.idleWaiters.splice(0)) w();
    if (this.state === 'closed' || this.draining || this.queue.length > 0) return;
    if (this.socket.isPaused()) this.socket.resume();
    this.armFrameTimer();
  }

  /** Marks the session busy until `work` settles, then goes on with the queue. */
  private wait(work: Promise<void>): void {
    this.busy = true;
    work.then(
      () => {
        this.busy = false;
        this.drain();
      },
      (err: unknown) => {
        this.busy = false;
        this.log.error({ err }, 'session task failed');
        this.close('error');
        this.idle();
      },
    );
  }

  /** A partial frame must complete within frameTimeoutMs of its first byte (while we are reading). */
  private armFrameTimer(): void {
    if (this.state === 'closed' || this.busy) return;
    if (this.framer.buffered === 0) {
      this.clearFrameTimer();
      return;
    }
    if (!this.frameTimer) {
      this.frameTimer = setTimeout(
        () => this.refuse(this.state === 'active' ? 'frame_timeout' : 'handshake_timeout'),
        this.deps.limits.frameTimeoutMs,
      );
    }
  }

  private clearFrameTimer(): void {
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.frameTimer = null;
  }

  /** One frame; sets `busy` when it has to wait (the login's checks, an AVL frame's XADD). */
  private handle(frame: TcpFrame, receivedAt: number, t0: number): void {
    switch (frame.kind) {
      case 'ping':
        return;
      case 'imei':
        this.wait(this.handshake(frame.imei));
        return;
      case 'frame':
        if (this.state !== 'active') {
          this.refuse('frame_before_handshake', { codec: frame.codec });
          return;
        }
        if (isCommandCodec(frame.codec)) {
          this.deps.hooks.onCommandFrame?.(this, frame.bytes);
          return;
        }
        this.avl(frame.bytes, receivedAt, t0);
    }
  }

  private async handshake(imei: string): Promise<void> {
    const { metrics } = this.deps;
    if (this.state === 'active') {
      // A second login on a live socket: accept it again only for the same, still enabled device.
      if (imei !== this.imei) {
        this.refuse('bad_imei', { imei, error: `second login with another IMEI (was ${this.imei})` });
        return;
      }
    } else {
      this.state = 'checking';
      this.imei = imei;
      this.log = this.log.child({ imei });
    }
    let status: Awaited<ReturnType<DeviceLookup>>;
    try {
      status = await this.deps.lookup(imei);
    } catch (err) {
      // Not the device's fault: close without an answer so it simply retries.
      this.refuse('lookup_failed', { err });
      return;
    }
    if (this.isClosed()) return;
    const admission = admitDevice(status, this.remoteAddress);
    if (!admission.admitted) {
      this.refuse(admission.reason, {}, handshakeAck(false));
      return;
    }
    if (this.state !== 'active') {
      let claim: Awaited<ReturnType<DeviceRegistry['claim']>>;
      try {
        claim = await this.deps.registry.claim(this, () => this.state === 'checking');
      } catch (err) {
        this.refuse('registry_failed', { err });
        return;
      }
      if (!claim.held) return;
      this.state = 'active';
      if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
      this.handshakeTimer = null;
      if (claim.takeover) this.reportTakeover(claim.takeover, admission.device.id);
    }
    metrics.handshakes.inc({ result: 'accepted' });
    this.socket.write(handshakeAck(true));
    if (!this.framer.parsingFrames) {
      // Frames a client sent right behind its login wait in the framer (bounded by
      // MAX_BUFFERED_BYTES) until now: queue them after the answer.
      this.framer.loginAccepted();
      this.onData(Buffer.alloc(0));
    }
    this.log.info(
      { deviceId: admission.device.id, registered: admission.device.registered === true },
      'device connected',
    );
    this.deps.hooks.onActive?.(this);
  }

  /**
   * Teltonika's login is the IMEI alone, so whoever knows it can take a session over (and
   * receive its commands). A reconnect from the same address is routine; from another address it
   * is logged and counted (also legitimate when a device changed networks while its old
   * connection was half-open, hence not refused: `allowed_networks` is the refusal).
   */
  private reportTakeover(t: Takeover, deviceId: string | number): void {
    const oldAddress = t.remote === null ? null : addressOf(t.remote);
    if (oldAddress === this.remoteAddress) return;
    const { instanceId, metrics, recordTakeover } = this.deps;
    metrics.takeovers.inc({ holder: t.holder });
    const oldInstance = t.holder === 'this_instance' ? instanceId : t.instance;
    this.log.warn(
      { takeover: true, previousRemote: t.remote, previousInstance: oldInstance },
      'login took over a live session of this IMEI from another address',
    );
    // Recorded in `events` too; the login does not wait for the database (nor fail with it).
    recordTakeover?.({
      deviceId,
      at: Date.now(),
      remote: this.remote,
      old_address: oldAddress,
      new_address: this.remoteAddress,
      old_instance: oldInstance,
      new_instance: instanceId,
    }).catch((err: unknown) => this.log.error({ err }, 'recording the takeover event failed'));
  }

  /** Checks an AVL frame and hands it to the stream writer; its ack follows in written(). */
  private avl(bytes: Buffer, receivedAt: number, t0: number): void {
    const { metrics } = this.deps;
    let info: { codec: number; records: number };
    try {
      info = checkAvlFrame(bytes);
    } catch (err) {
      if (!isProtocolError(err)) throw err;
      // The frame arrived whole but is damaged: answer "0 records" so the device resends it.
      if (err.code === 'CRC_MISMATCH') metrics.crcErrors.inc({ transport: 'tcp' });
      metrics.invalidFrames.inc({ transport: 'tcp', code: err.code });
      this.log.warn(
        { code: err.code, error: err.message, bytes: bytes.length },
        'invalid frame answered with 0 records',
      );
      this.socket.write(avlAck(0));
      return;
    }
    const fields = encodeTelemetryEntry({
      imei: this.imei,
      codec: info.codec,
      transport: 'tcp',
      instance: this.deps.instanceId,
      receivedAt,
      records: info.records,
      frame: bytes,
    });
    this.busy = true;
    this.inFlightRecords = info.records;
    this.inFlightT0 = t0;
    this.deps.writer.append(this.deps.keys.telemetryFor(this.imei).avl, fields, this);
  }

  /** EntrySink: Redis has the frame in progress, so it is acknowledged; then the next item. */
  written(): void {
    this.busy = false;
    const records = this.inFlightRecords;
    if (this.write(AVL_ACKS[records] ?? avlAck(records))) {
      const tally = this.deps.metrics.tally.tcp;
      tally.frames++;
      tally.records += records;
      this.deps.metrics.ackLatency.observe('tcp', (performance.now() - this.inFlightT0) / 1000);
    }
    this.drain();
  }

  /** EntrySink: not durable, so not acknowledged: the device keeps the records and sends them again. */
  failed(err: unknown): void {
    this.busy = false;
    this.deps.metrics.writeFailures.inc();
    this.log.error({ err, records: this.inFlightRecords }, 'telemetry write failed; frame not acknowledged');
    this.close('stream_write_failed');
    this.idle();
  }

  /** Logs and counts one refusal, optionally answers, then closes. */
  private refuse(reason: RefusalReason, details: Record<string, unknown> = {}, answer?: Buffer): void {
    if (this.state === 'closed') return;
    const { metrics } = this.deps;
    metrics.refusals.inc({ reason, transport: 'tcp' });
    if (
      reason.endsWith('_device') ||
      reason === 'lookup_failed' ||
      reason === 'registry_failed' ||
      reason === 'bad_imei'
    ) {
      metrics.handshakes.inc({ result: 'refused' });
    }
    this.log.warn({ reason, ...details }, 'connection refused');
    if (answer && !this.socket.destroyed) {
      this.socket.end(answer);
      this.close(reason, false);
    } else {
      this.close(reason);
    }
  }

  isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Idempotent. Releases the registry entry if this session still holds the device. */
  close(reason: string, destroy = true): void {
    if (this.state === 'closed') return;
    const wasActive = this.state === 'active';
    this.state = 'closed';
    this.closeReason = reason;
    this.queue.length = 0;
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.clearFrameTimer();
    if (destroy) this.socket.destroy();
    else {
      // The answer is flushed by end(); do not wait for a device that never closes its side.
      const t = setTimeout(() => this.socket.destroy(), 2000);
      t.unref();
      this.socket.once('close', () => clearTimeout(t));
    }
    if (wasActive) this.log.info({ reason }, 'device disconnected');
    this.deps.hooks.onClosed?.(this, reason);
    const release = wasActive
      ? this.deps.registry.release(this, reason).catch((err: unknown) => {
          this.log.error({ err }, 'could not deregister device (the registry entry will be reaped)');
        })
      : Promise.resolve();
    release.then(() => this.resolveClosed());
  }
}
