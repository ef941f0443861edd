/**
 * UDP datagrams: no login and no CRC; each datagram carries its IMEI and one AVL packet. The
 * datagram is written whole to the telemetry stream, and the 7-byte reply (which echoes both packet
 * ids) is sent only after Redis confirmed the write. Unknown or disabled devices get no reply.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import type { Logger } from 'pino';
import { encodeTelemetryEntry, type RedisKeys } from '../contract/index.js';
import { isProtocolError, parseUdpDatagram, type UdpHeader, udpAck } from '../protocol/index.js';
import { admitDevice, type DeviceLookup } from './devices.js';
import type { IngestMetrics } from './metrics.js';
import type { StreamWriter } from './stream-writer.js';

export interface UdpDeps {
  instanceId: string;
  keys: RedisKeys;
  logger: Logger;
  metrics: IngestMetrics;
  lookup: DeviceLookup;
  writer: StreamWriter;
  maxFrameBytes: number;
  /** Datagrams awaiting their write at once; beyond it new ones are dropped (the device resends). */
  maxInFlight: number;
}

export class UdpIngest {
  private inFlight = new Set<Promise<void>>();
  private accepting = true;

  constructor(
    private readonly socket: Socket,
    private readonly deps: UdpDeps,
  ) {
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
  }

  /** Stops taking datagrams and waits until those in flight were written and answered. */
  async drain(): Promise<void> {
    this.accepting = false;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (!this.accepting) return;
    const { metrics } = this.deps;
    metrics.tally.udp.bytesIn += msg.length;
    const remote = `${rinfo.address}:${rinfo.port}`;
    if (this.inFlight.size >= this.deps.maxInFlight || msg.length > this.deps.maxFrameBytes + 64) {
      const reason = this.inFlight.size >= this.deps.maxInFlight ? 'udp_overloaded' : 'frame_too_large';
      metrics.refusals.inc({ reason, transport: 'udp' });
      this.deps.logger.warn({ remote, reason, bytes: msg.length }, 'datagram refused');
      return;
    }
    const t0 = process.hrtime.bigint();
    const receivedAt = Date.now();
    const p = this.handle(msg, rinfo, remote, receivedAt, t0).catch((err: unknown) => {
      this.deps.logger.error({ err, remote }, 'datagram handling failed');
    });
    this.inFlight.add(p);
    p.then(() => this.inFlight.delete(p));
  }

  private async handle(msg: Buffer, rinfo: RemoteInfo, remote: string, receivedAt: number, t0: bigint) {
    const { metrics } = this.deps;
    let header: UdpHeader;
    try {
      header = parseUdpDatagram(msg);
    } catch (err) {
      if (!isProtocolError(err)) throw err;
      // Without readable packet ids there is nothing meaningful to answer.
      metrics.invalidFrames.inc({ transport: 'udp', code: err.code });
      this.deps.logger.warn({ remote, code: err.code, error: err.message }, 'invalid datagram ignored');
      return;
    }
    const log = this.deps.logger.child({ imei: header.imei, remote });
    let status: Awaited<ReturnType<DeviceLookup>>;
    try {
      status = await this.deps.lookup(header.imei);
    } catch (err) {
      metrics.refusals.inc({ reason: 'lookup_failed', transport: 'udp' });
      log.warn({ err }, 'datagram refused: device lookup failed');
      return;
    }
    const admission = admitDevice(status, rinfo.address);
    if (!admission.admitted) {
      const reason = admission.reason;
      metrics.refusals.inc({ reason, transport: 'udp' });
      log.warn({ reason }, 'datagram refused');
      return;
    }
    try {
      await this.deps.writer.add(
        this.deps.keys.telemetryFor(header.imei).avl,
        encodeTelemetryEntry({
          imei: header.imei,
          codec: header.codec,
          transport: 'udp',
          instance: this.deps.instanceId,
          receivedAt,
          records: header.records,
          frame: msg,
        }),
      );
    } catch (err) {
      metrics.writeFailures.inc();
      log.error({ err }, 'telemetry write failed; datagram not acknowledged');
      return;
    }
    await new Promise<void>((resolve) => {
      this.socket.send(udpAck(header.packetId, header.avlPacketId, header.records), rinfo.port, rinfo.address, () =>
        resolve(),
      );
    });
    metrics.tally.udp.frames++;
    metrics.tally.udp.records += header.records;
    metrics.ackLatency.observe('udp', Number(process.hrtime.bigint() - t0) / 1e9);
  }
}
