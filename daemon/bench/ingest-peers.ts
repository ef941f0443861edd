/**
 * Child process of `npm run bench:ingest`: the two peers the daemon is compared with, speaking the
 * same protocol to the same simulated fleet (`BENCH_PEER`):
 *
 *  - `naive`: the way a Node user would write it: a plain `net` server, a growing Buffer per socket,
 *    each packet decoded with `complete-teltonika-parser` (it takes a hex string; CRC checked), one
 *    awaited XADD per packet with the decoded packet as JSON (ioredis, one connection), and the ack
 *    written after Redis' reply.
 *  - `bare`: the ceiling of the TCP part alone: our framer + envelope/CRC check + ack, no Redis.
 *
 * Same IPC as ingest-server.ts ('ready', 'stats', 'mark', 'mem', 'stop'); no daemon histograms.
 */
import { createRequire } from 'node:module';
import { createServer, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { redisKeys } from '../src/contract/index.js';
import { avlAck, checkAvlFrame, handshakeAck, TcpFramer } from '../src/protocol/index.js';
import { watchLoop } from './loop-watch.js';

const require = createRequire(import.meta.url);
const { ProtocolParser } = require('complete-teltonika-parser') as {
  ProtocolParser: new (hex: string) => { CodecType?: string; Quantity1?: number; Content: unknown };
};

const peer = process.env.BENCH_PEER;
if (peer !== 'naive' && peer !== 'bare') throw new Error('BENCH_PEER must be naive or bare');
const key = redisKeys(process.env.BENCH_REDIS_PREFIX ?? 'bench:').telemetryAvl;
const redis = peer === 'naive' ? new Redis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379') : null;
const sockets = new Set<Socket>();

/** The naive server: what a tutorial-style implementation looks like. */
function naive(socket: Socket): void {
  let buf: Buffer = Buffer.alloc(0);
  let imei: string | null = null;
  let busy = false;
  const work = async () => {
    if (busy) return;
    busy = true;
    try {
      for (;;) {
        if (imei === null) {
          if (buf.length < 2) break;
          const n = buf.readUInt16BE(0);
          if (buf.length < 2 + n) break;
          imei = buf.subarray(2, 2 + n).toString('ascii');
          buf = buf.subarray(2 + n);
          socket.write(Buffer.from([1]));
          continue;
        }
        if (buf.length < 8) break;
        const len = buf.readUInt32BE(4);
        if (buf.length < len + 12) break;
        const packet = buf.subarray(0, len + 12);
        buf = buf.subarray(len + 12);
        const parsed = new ProtocolParser(packet.toString('hex'));
        await redis!.xadd(key, '*', 'imei', imei, 'packet', JSON.stringify(parsed.Content));
        const ack = Buffer.alloc(4);
        ack.writeUInt32BE(parsed.Quantity1 ?? packet[9]!);
        socket.write(ack);
      }
    } catch {
      socket.destroy();
    } finally {
      busy = false;
    }
    if (imei !== null && buf.length >= 12 && buf.length >= buf.readUInt32BE(4) + 12) void work();
  };
  socket.on('data', (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    void work();
  });
}

/** The bare ceiling: framing + CRC + ack, nothing stored. */
function bare(socket: Socket): void {
  const framer = new TcpFramer({ maxFrameBytes: 64 * 1024 });
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const f of framer.push(chunk)) {
        if (f.kind === 'imei') socket.write(handshakeAck(true));
        else if (f.kind === 'frame') socket.write(avlAck(checkAvlFrame(f.bytes).records));
      }
    } catch {
      socket.destroy();
    }
  });
}

const server = createServer({ noDelay: true }, (socket) => {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  socket.on('error', () => {});
  (peer === 'naive' ? naive : bare)(socket);
});
server.maxConnections = 100_000;
server.listen(0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));

const loop = watchLoop();

type Msg = { type: 'mem' } | { type: 'stop' } | { type: 'stats' } | { type: 'mark' };
process.on('message', async (m: Msg) => {
  if (m.type === 'mem') {
    globalThis.gc?.();
    process.send?.({ type: 'mem', ...process.memoryUsage(), sessions: sockets.size });
  } else if (m.type === 'stats') {
    process.send?.({ type: 'stats', ...loop.window(), ack: [], xadd: [] });
  } else if (m.type === 'mark') {
    loop.mark();
    process.send?.({ type: 'mark' });
  } else if (m.type === 'stop') {
    for (const s of sockets) s.destroy();
    server.close();
    redis?.disconnect();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready', tcpPort: (server.address() as { port: number }).port });
