/**
 * A simulated device on UDP: every datagram carries the IMEI and one AVL packet; the server
 * answers with 7 bytes echoing the packet id and AVL packet id plus the accepted count. Like FMB
 * firmware, an unanswered or short-counted packet is sent again with a new AVL packet id.
 */
import { createSocket, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { type AvlRecord, encodeUdpDatagram } from '../protocol/index.js';
import {
  type AckedFrame,
  countAttempt,
  DeviceClosedError,
  deviceBasics,
  emptyCounters,
  resendDelayMs,
  type SimulatedDeviceOptions,
  takeAck,
} from './device.js';
import type { Track } from './track.js';

interface UdpPacket {
  records: AvlRecord[] | null;
  timestamps: number[];
  count: number;
  attempts: number;
  packetId: number;
  avlPacketId: number;
  datagram: Buffer | null;
  sentAt: bigint;
  resolve: ((acked: AckedFrame) => void) | null;
  reject: ((err: Error) => void) | null;
  pendingRecords: AvlRecord[];
}

export class SimulatedUdpDevice extends EventEmitter {
  readonly imei: string;
  readonly counters = emptyCounters();
  readonly track: Track;
  /** UDP devices are not commanded (Codec 12 is TCP only); kept for a uniform interface. */
  readonly answered: never[] = [];
  private readonly opts: SimulatedDeviceOptions;
  private readonly codec: number;
  private readonly now: () => number;
  private socket: Socket | null = null;
  private closed = false;
  private queue: UdpPacket[] = [];
  private inFlight: UdpPacket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private packetId: number;
  private avlPacketId = 0;

  constructor(options: SimulatedDeviceOptions) {
    super();
    this.opts = options;
    this.imei = options.imei;
    const basics = deviceBasics(options);
    ({ codec: this.codec, now: this.now, track: this.track } = basics);
    this.packetId = basics.seed & 0xffff;
  }

  get connected(): boolean {
    return this.socket !== null;
  }

  get pendingRecords(): number {
    return this.queue.reduce((n, p) => n + p.count, 0);
  }

  /** Binds the local socket (UDP has no login); always resolves true. */
  async connect(): Promise<boolean> {
    if (this.closed) throw new DeviceClosedError(`device ${this.imei} is closed`);
    if (this.socket) return true;
    const socket = createSocket('udp4');
    this.socket = socket;
    socket.on('message', (msg) => this.onMessage(msg));
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.connect(this.opts.port, this.opts.host, () => resolve()));
    this.emit('connected');
    this.pump();
    return true;
  }

  sendRecords(n: number): Promise<AckedFrame> {
    return this.sendFrame(this.track.nextRecords(n, this.now()));
  }

  sendFrame(records: AvlRecord[]): Promise<AckedFrame> {
    return new Promise((resolve, reject) => this.enqueuePacket(records, true, resolve, reject));
  }

  enqueue(n: number): void {
    this.enqueuePacket(this.track.nextRecords(n, this.now()), false, null, null);
  }

  /** Sends raw bytes as one datagram (tests of malformed input). */
  writeRaw(bytes: Uint8Array): void {
    this.socket?.send(bytes);
  }

  disconnect(): void {}

  async close(): Promise<void> {
    this.kill();
  }

  kill(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const err = new DeviceClosedError(`device ${this.imei} closed with ${this.pendingRecords} unacknowledged records`);
    for (const p of this.queue.splice(0)) p.reject?.(err);
    this.inFlight = null;
    this.socket?.close();
    this.socket = null;
  }

  private enqueuePacket(
    records: AvlRecord[],
    keep: boolean,
    resolve: UdpPacket['resolve'],
    reject: UdpPacket['reject'],
  ) {
    if (this.closed) {
      reject?.(new DeviceClosedError(`device ${this.imei} is closed`));
      return;
    }
    this.queue.push({
      records: keep ? records : null,
      pendingRecords: records,
      timestamps: records.map((r) => r.timestamp),
      count: records.length,
      attempts: 0,
      packetId: 0,
      avlPacketId: 0,
      datagram: null,
      sentAt: 0n,
      resolve,
      reject,
    });
    if (!this.socket) void this.connect();
    else this.pump();
  }

  private pump(): void {
    if (this.closed || !this.socket || this.inFlight) return;
    const p = this.queue[0];
    if (!p) return;
    this.inFlight = p;
    countAttempt(this.counters, p);
    // Every transmission gets fresh ids, as real devices do on resend.
    this.packetId = (this.packetId + 1) & 0xffff;
    this.avlPacketId = (this.avlPacketId + 1) & 0xff;
    p.packetId = this.packetId;
    p.avlPacketId = this.avlPacketId;
    p.datagram = encodeUdpDatagram(p.packetId, p.avlPacketId, this.imei, this.codec, p.pendingRecords);
    this.counters.framesSent++;
    p.sentAt = process.hrtime.bigint();
    const datagram: Buffer = p.datagram;
    this.socket.send(datagram);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.counters.ackTimeouts++;
      this.inFlight = null;
      this.pump();
    }, this.opts.ackTimeoutMs ?? 5_000);
  }

  private onMessage(msg: Buffer): void {
    const p = this.inFlight;
    // 00 05 | packet id | 01 | AVL packet id | accepted count
    if (!p || msg.length !== 7 || msg.readUInt16BE(0) !== 5) return;
    if (msg.readUInt16BE(2) !== p.packetId || msg[5] !== p.avlPacketId) return; // not ours: keep waiting
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.inFlight = null;
    const accepted = msg[6]!;
    const latencyUs = takeAck(this, this.counters, this.queue, p, accepted);
    if (latencyUs === null) {
      this.pump();
      return;
    }
    if (accepted > 0 && accepted < p.count) {
      // The server took the first `accepted` records: only the rest is sent again.
      const done = p.timestamps.slice(0, accepted);
      p.timestamps = p.timestamps.slice(accepted);
      p.pendingRecords = p.pendingRecords.slice(accepted);
      p.count -= accepted;
      this.counters.recordsAcked += accepted;
      this.emit('acked', { count: accepted, timestamps: done, attempts: p.attempts, latencyUs });
    }
    const delay = resendDelayMs(this.opts, p.attempts);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, delay);
  }
}
