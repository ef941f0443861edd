/** Connection limits against real sockets: every refusal closes without an ack and is counted. */
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeConnectionEvent } from '../../src/contract/index.js';
import type { Ingestion, IngestionOptions } from '../../src/ingestion/server.js';
import { avlAck } from '../../src/protocol/index.js';
import { avlFrame, eventually, type RawDevice, useIngestionStack } from './support.js';

const IMEI = '356307042441013';
const stack = useIngestionStack([{ imei: IMEI, name: 'limits', enabled: true }]);

function start(id: string, limits: IngestionOptions['limits']): Promise<Ingestion> {
  return stack.start(id, { limits, commands: false });
}

function connect(ing: Ingestion): Promise<RawDevice> {
  return stack.opened.device(ing.tcpPort);
}

async function refusals(ing: Ingestion, reason: string): Promise<number> {
  const m = (await ing.registry.getSingleMetric('fleet_ingest_refusals_total')?.get())?.values ?? [];
  return m.filter((v) => v.labels.reason === reason).reduce((a, v) => a + v.value, 0);
}

describe('limits', () => {
  let ing: Ingestion;
  beforeAll(async () => {
    ing = await start('limits-a', {
      maxFrameBytes: 256,
      handshakeTimeoutMs: 300,
      frameTimeoutMs: 300,
      idleTimeoutMs: 600,
    });
  });

  it('closes a connection announcing a frame larger than MAX_FRAME_BYTES, without an ack', async () => {
    const d = await connect(ing);
    expect(await d.login(IMEI)).toBe(1);
    const header = Buffer.alloc(8);
    header.writeUInt32BE(100_000, 4);
    d.send(header);
    await d.whenClosed;
    expect(d.available).toBe(0);
    expect(await refusals(ing, 'frame_too_large')).toBe(1);
  });

  it('closes a sender too slow to finish its login (handshake timeout)', async () => {
    const d = await connect(ing);
    d.send(Buffer.from([0x00, 0x0f, 0x33, 0x35]));
    await d.whenClosed;
    expect(d.available).toBe(0);
    expect(await refusals(ing, 'handshake_timeout')).toBeGreaterThanOrEqual(1);
  });

  it('closes a device that starts a frame and never finishes it; nothing half-written is stored', async () => {
    const d = await connect(ing);
    expect(await d.login(IMEI)).toBe(1);
    const frame = avlFrame(2);
    d.send(frame.subarray(0, frame.length - 5));
    await d.whenClosed;
    expect(d.available).toBe(0);
    expect(await refusals(ing, 'frame_timeout')).toBe(1);
    expect(await stack.r.redis.xlen(stack.r.keys.telemetryAvl)).toBe(0);
  });

  it('closes an idle device and records the reason', async () => {
    const d = await connect(ing);
    expect(await d.login(IMEI)).toBe(1);
    d.send(avlFrame(1));
    expect(await d.read(4)).toEqual(avlAck(1));
    await d.whenClosed;
    const events = (await stack.r.redis.xrange(stack.r.keys.connectionsEvents, '-', '+')).map(([, f]) =>
      decodeConnectionEvent(f),
    );
    expect(events.at(-1)).toMatchObject({ type: 'disconnected', imei: IMEI, reason: 'idle' });
  });

  it('refuses connections over MAX_CONNECTIONS and accepts again once one closes', async () => {
    const capped = await start('limits-b', { maxConnections: 3, handshakeTimeoutMs: 60_000 });
    const open = [await connect(capped), await connect(capped), await connect(capped)];
    const extra = await connect(capped);
    await extra.whenClosed;
    expect(await refusals(capped, 'max_connections')).toBe(1);
    open[0]?.close();
    await eventually(async () => {
      const d = await connect(capped);
      const answer = await d.login(IMEI).catch(() => -1);
      d.close();
      return answer === 1;
    }, 'a slot frees up');
  });

  it('refuses connections over MAX_CONNECTIONS_PER_IP', async () => {
    const perIp = await start('limits-c', { maxConnectionsPerIp: 2, handshakeTimeoutMs: 60_000 });
    await connect(perIp);
    await connect(perIp);
    const extra = await connect(perIp);
    await extra.whenClosed;
    expect(await refusals(perIp, 'max_connections_per_ip')).toBe(1);
  });
});
