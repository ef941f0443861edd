import { once } from 'node:events';
import { type AddressInfo, createServer, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/index.js';
import { decodeCommandResponse, encodeOutboundCommand, redisKeys } from '../../src/contract/index.js';
import { CODEC_8 } from '../../src/protocol/index.js';
import { DeviceClosedError, SimulatedDevice } from '../../src/simulator/device.js';
import { createSimulatedDevice } from '../../src/simulator/fleet.js';
import { simulatedImei } from '../../src/simulator/imei.js';
import { SimulatedUdpDevice } from '../../src/simulator/udp-device.js';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
const devices: Array<{ kill(): void }> = [];
let next = 0;
/** A fresh allowed IMEI per test. */
function imei(allow = true): string {
  const i = simulatedImei(4242, next++);
  if (allow) h.allowed.add(i);
  return i;
}
function track<T extends { kill(): void }>(d: T): T {
  devices.push(d);
  return d;
}

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  for (const d of devices) d.kill();
  await h?.close();
});

describe('simulated TCP device against the real ingestion server', () => {
  it('logs in, sends frames and gets exactly its records acknowledged and on the stream', async () => {
    const d = track(new SimulatedDevice({ imei: imei(), host: '127.0.0.1', port: h.ingestion.tcpPort, seed: 1 }));
    expect(await d.connect()).toBe(true);
    const first = await d.sendRecords(10);
    const second = await d.sendRecords(3);
    expect(first.attempts).toBe(1);
    expect(first.records).toHaveLength(10);
    expect(d.counters).toMatchObject({ recordsSent: 13, recordsAcked: 13, recordsResent: 0, framesAcked: 2 });
    const stored = (await h.streamRecords()).filter((r) => r.imei === d.imei).map((r) => r.timestamp);
    expect(stored).toEqual([...first.records, ...second.records].map((r) => r.timestamp));
    await d.close();
  });

  it('is refused for an unknown IMEI and reports it', async () => {
    const d = track(
      new SimulatedDevice({ imei: imei(false), host: '127.0.0.1', port: h.ingestion.tcpPort, autoReconnect: false }),
    );
    expect(await d.connect()).toBe(false);
    expect(d.counters.refusals).toBe(1);
    expect(d.connected).toBe(false);
  });

  it('backs off after a refusal and gets in once the device is allowed', async () => {
    const id = imei(false);
    const d = track(new SimulatedDevice({ imei: id, host: '127.0.0.1', port: h.ingestion.tcpPort, backoffMs: 50 }));
    const acked = d.sendRecords(2);
    await waitFor('two refusals', () => d.counters.refusals >= 2, 10_000);
    h.allowed.add(id);
    expect((await acked).records).toHaveLength(2);
    expect(d.counters.recordsResent).toBe(0);
  });

  it('resends the unacknowledged frame after an ack timeout, on a new connection', async () => {
    // A relay to the real server that swallows everything the server says after the login reply on
    // the first connection: the device's frame is stored but its ack never arrives.
    let connections = 0;
    const relay = createServer((client: Socket) => {
      const n = ++connections;
      const upstream = new Socket();
      upstream.connect(h.ingestion.tcpPort, '127.0.0.1');
      let fromServer = 0;
      client.on('data', (b) => upstream.write(b));
      upstream.on('data', (b: Buffer) => {
        fromServer += b.length;
        if (n > 1 || fromServer <= 1) client.write(b);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end);
      upstream.on('close', end);
      client.on('error', end);
      upstream.on('error', end);
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    try {
      const d = track(
        new SimulatedDevice({
          imei: imei(),
          host: '127.0.0.1',
          port: (relay.address() as AddressInfo).port,
          ackTimeoutMs: 300,
          codec: CODEC_8,
        }),
      );
      const acked = await d.sendRecords(10);
      expect(acked.attempts).toBe(2);
      expect(d.counters).toMatchObject({
        ackTimeouts: 1,
        reconnects: 1,
        recordsSent: 10,
        recordsResent: 10,
        recordsAcked: 10,
      });
      // Stored twice (at-least-once); downstream deduplicates on (IMEI, fix time).
      const stored = (await h.streamRecords()).filter((r) => r.imei === d.imei).map((r) => r.timestamp);
      const ts = acked.records.map((r) => r.timestamp);
      expect(stored).toEqual([...ts, ...ts]);
      await d.close();
    } finally {
      relay.close();
    }
  });

  it('after a dropped link (RST) reconnects by itself and delivers what was in flight', async () => {
    const d = track(new SimulatedDevice({ imei: imei(), host: '127.0.0.1', port: h.ingestion.tcpPort }));
    expect(await d.connect()).toBe(true);
    const inFlight = d.sendRecords(5);
    d.disconnect(true);
    const acked = await inFlight;
    expect(d.counters.reconnects).toBe(1);
    expect(d.counters.recordsAcked).toBe(5);
    // Resent exactly as often as it was sent again; stored at least once either way.
    expect(d.counters.recordsResent).toBe((acked.attempts - 1) * 5);
    const stored = new Set((await h.streamRecords()).filter((r) => r.imei === d.imei).map((r) => r.timestamp));
    for (const r of acked.records) expect(stored.has(r.timestamp)).toBe(true);
    await d.close();
  });

  it('answers Codec 12 commands sent through the ingestion outbound stream', async () => {
    const d = track(new SimulatedDevice({ imei: imei(), host: '127.0.0.1', port: h.ingestion.tcpPort }));
    expect(await d.connect()).toBe(true);
    await d.sendRecords(1);
    const keys = redisKeys(h.prefix);
    const commands = ['getver', 'setdigout 1', 'getio', 'bogus'];
    for (const [i, text] of commands.entries()) {
      await h.redis.xadd(
        keys.commandsOutbound(h.ingestion.instanceId),
        '*',
        ...encodeOutboundCommand({ commandId: `c${i}`, imei: d.imei, text, expiresAt: Date.now() + 60_000 }),
      );
    }
    const answered = await waitFor(
      'four answers',
      async () => {
        const entries = await h.redis.xrange(keys.commandsResponses, '-', '+');
        const map = new Map<string, string>();
        for (const [, f] of entries) {
          const o = decodeCommandResponse(f);
          if (o.imei === d.imei && o.outcome === 'answered') map.set(o.commandId, o.response);
        }
        return map.size === commands.length ? map : undefined;
      },
      10_000,
    );
    expect(answered.get('c0')).toMatch(new RegExp(`^Ver:.* IMEI:${d.imei}`));
    expect(answered.get('c1')).toBe('DOUT1:1 Timeout:INFINITY DOUT2:0 Timeout:INFINITY');
    expect(answered.get('c2')).toMatch(/DO1:1 DO2:0$/);
    expect(answered.get('c3')).toBe('Unknown command: bogus');
    expect(d.counters.commandsAnswered).toBe(4);
    expect(d.answered.map((a) => a.command)).toEqual(commands);
    // The output state shows up in the next records too.
    const after = await d.sendRecords(1);
    const io = after.records[0]!.io;
    expect(io.values[io.ids.indexOf(179)]).toBe(1);
  });

  it('can stay silent or answer late, so command timeouts can be exercised', async () => {
    const d = track(
      new SimulatedDevice({
        imei: imei(),
        host: '127.0.0.1',
        port: h.ingestion.tcpPort,
        onCommand: (text) => (text === 'getgps' ? null : undefined),
        commandReplyDelayMs: 100,
      }),
    );
    expect(await d.connect()).toBe(true);
    const keys = redisKeys(h.prefix);
    for (const [id, text] of [
      ['silent', 'getgps'],
      ['late', 'getver'],
    ]) {
      await h.redis.xadd(
        keys.commandsOutbound(h.ingestion.instanceId),
        '*',
        ...encodeOutboundCommand({ commandId: id!, imei: d.imei, text: text!, expiresAt: Date.now() + 60_000 }),
      );
    }
    const outcomes = await waitFor(
      'both outcomes',
      async () => {
        const map = new Map<string, string>();
        for (const [, f] of await h.redis.xrange(keys.commandsResponses, '-', '+')) {
          const o = decodeCommandResponse(f);
          if (o.imei === d.imei && o.outcome !== 'sent') map.set(o.commandId, `${o.outcome}:${o.response}`);
        }
        return map.size === 2 ? map : undefined;
      },
      10_000,
    );
    // One command at a time per device: the silent one times out, then the next is answered.
    expect(outcomes.get('silent')).toMatch(/^failed:/);
    expect(outcomes.get('late')).toMatch(/^answered:Ver:/);
    expect(d.answered.map((a) => a.command)).toEqual(['getver']);
  });

  it('kill() drops the link without FIN and rejects what was not acknowledged', async () => {
    const d = track(new SimulatedDevice({ imei: imei(), host: '127.0.0.1', port: h.ingestion.tcpPort }));
    expect(await d.connect()).toBe(true);
    const registry = redisKeys(h.prefix).connectionsRegistry;
    await waitFor('registered', async () => Boolean(await h.redis.hget(registry, d.imei)), 10_000);
    const pending = d.sendFrame([]).catch((e: unknown) => e);
    d.kill();
    expect(await pending).toBeInstanceOf(DeviceClosedError);
    // The server notices the reset and forgets the connection.
    await waitFor('deregistered', async () => (await h.redis.hget(registry, d.imei)) === null, 10_000);
    await expect(d.sendRecords(1)).rejects.toBeInstanceOf(DeviceClosedError);
  });
});

describe('simulated UDP device against the real ingestion server', () => {
  it('sends datagrams and checks the 7-byte ack (ids echoed, count)', async () => {
    const d = track(
      createSimulatedDevice({ transport: 'udp', imei: imei(), host: '127.0.0.1', port: h.ingestion.udpPort! }),
    );
    expect(d).toBeInstanceOf(SimulatedUdpDevice);
    const a = await d.sendRecords(5);
    const b = await d.sendRecords(5);
    expect(a.attempts).toBe(1);
    expect(d.counters).toMatchObject({ recordsAcked: 10, framesAcked: 2, wrongAcks: 0 });
    const stored = (await h.streamRecords()).filter((r) => r.imei === d.imei).map((r) => r.timestamp);
    expect(stored).toEqual([...a.records, ...b.records].map((r) => r.timestamp));
  });

  it('keeps resending when nobody answers, and gives the records up only on close', async () => {
    const unknown = imei(false);
    const d = track(
      createSimulatedDevice({
        transport: 'udp',
        imei: unknown,
        host: '127.0.0.1',
        port: h.ingestion.udpPort!,
        ackTimeoutMs: 100,
      }),
    );
    const p = d.sendRecords(3).catch((e: unknown) => e);
    await waitFor('three frames', () => d.counters.framesSent >= 3, 10_000);
    expect(d.counters.recordsAcked).toBe(0);
    expect(d.counters.recordsResent).toBeGreaterThanOrEqual(6);
    d.kill();
    expect(await p).toBeInstanceOf(DeviceClosedError);
  });
});
