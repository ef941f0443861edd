/**
 * Outbound commands with a raw socket acting as the device: Codec 12 out, Codec 12 reply back,
 * outcomes on commands:responses, and the outbound entry acknowledged only after its final outcome.
 */

import { Redis } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CommandResponse,
  decodeCommandResponse,
  encodeOutboundCommand,
  GROUPS,
  MAX_COMMAND_BYTES,
  type OutboundCommandInput,
} from '../../src/contract/index.js';
import type { Ingestion } from '../../src/ingestion/server.js';
import { avlAck, decodeCommandFrame, encodeCodec12Response } from '../../src/protocol/index.js';
import {
  avlFrame,
  eventually,
  type RawDevice,
  startOwnRedis,
  startTestIngestion,
  useIngestionStack,
} from './support.js';

const IMEI = '356307042443001';
const IMEI_2 = '356307042443002';
const stack = useIngestionStack([
  { imei: IMEI, name: 'cmd 1', enabled: true },
  { imei: IMEI_2, name: 'cmd 2', enabled: true },
]);
let ing: Ingestion;
let nextId = 1;

async function start(id: string): Promise<Ingestion> {
  return stack.start(id, { commandTimeoutMs: 400 });
}

async function login(imei = IMEI): Promise<RawDevice> {
  const d = await stack.opened.device(ing.tcpPort);
  expect(await d.login(imei)).toBe(1);
  return d;
}

async function dispatch(c: Partial<OutboundCommandInput> = {}, instance = 'cmd-a'): Promise<string> {
  const commandId = c.commandId ?? `c${nextId++}`;
  await stack.r.redis.xadd(
    stack.r.keys.commandsOutbound(instance),
    '*',
    ...encodeOutboundCommand({ commandId, imei: IMEI, text: 'getinfo', expiresAt: Date.now() + 60_000, ...c }),
  );
  return commandId;
}

async function responses(commandId?: string): Promise<CommandResponse[]> {
  const all = (await stack.r.redis.xrange(stack.r.keys.commandsResponses, '-', '+')).map(([, f]) =>
    decodeCommandResponse(f),
  );
  return commandId === undefined ? all : all.filter((x) => x.commandId === commandId);
}

async function outcomes(commandId: string): Promise<string[]> {
  return (await responses(commandId)).map((x) => x.outcome);
}

async function pending(instance = 'cmd-a'): Promise<number> {
  const [count] = (await stack.r.redis.xpending(stack.r.keys.commandsOutbound(instance), GROUPS.outbound)) as [number];
  return count;
}

/** Reads one whole command frame the server wrote to the device. */
async function readCommand(d: RawDevice) {
  const head = await d.read(8);
  const rest = await d.read(head.readUInt32BE(4) + 4);
  return decodeCommandFrame(Buffer.concat([head, rest]));
}

beforeAll(async () => {
  ing = await start('cmd-a');
});

describe('outbound commands', () => {
  it('sends Codec 12, reports sent, then answered with the reply text, then acknowledges the entry', async () => {
    const d = await login();
    const id = await dispatch({ text: 'getinfo' });
    const cmd = await readCommand(d);
    expect(cmd.codec).toBe(0x0c);
    expect(cmd.type).toBe(0x05);
    expect(cmd.payload.toString()).toBe('getinfo');
    await eventually(async () => (await outcomes(id)).includes('sent'), 'sent reported');
    expect(await pending()).toBe(1);

    d.send(encodeCodec12Response('INI:2019/7/22 7:22 RTC:2019/7/22 7:53 RST:2\r\n'));
    await eventually(async () => (await outcomes(id)).includes('answered'), 'answered reported');
    const answered = (await responses(id)).find((x) => x.outcome === 'answered');
    expect(answered).toMatchObject({
      imei: IMEI,
      instance: 'cmd-a',
      response: 'INI:2019/7/22 7:22 RTC:2019/7/22 7:53 RST:2',
    });
    await eventually(async () => (await pending()) === 0, 'outbound entry acknowledged');
    // AVL keeps flowing on the same socket, and the reply was never answered with a record count.
    d.send(avlFrame(2));
    expect(await d.read(4)).toEqual(avlAck(2));
    d.close();
  });

  /** A logged-in device with two commands dispatched, once the first was written to it. */
  async function twoDispatched(first: string, second: string) {
    const d = await login();
    const ids = { first: await dispatch({ text: first }), second: await dispatch({ text: second }) };
    expect((await readCommand(d)).payload.toString()).toBe(first);
    return { d, ...ids };
  }

  it('keeps one command in flight per device: the second is sent only after the first was answered', async () => {
    const { d, first, second } = await twoDispatched('getver', 'getio');
    d.send(encodeCodec12Response('Ver:03.18.14_04'));
    expect((await readCommand(d)).payload.toString()).toBe('getio');
    d.send(encodeCodec12Response('DI1:1 DI2:0'));
    await eventually(async () => (await outcomes(second)).includes('answered'), 'second answered');
    // In stream order: the second was sent only after the first's answer, and each got its own reply.
    const seq = (await responses()).filter((x) => x.commandId === first || x.commandId === second);
    expect(seq.map((x) => `${x.commandId}:${x.outcome}`)).toEqual([
      `${first}:sent`,
      `${first}:answered`,
      `${second}:sent`,
      `${second}:answered`,
    ]);
    expect(seq[1]?.response).toBe('Ver:03.18.14_04');
    expect(seq[3]?.response).toBe('DI1:1 DI2:0');
    d.close();
  });

  it('fails a command the device does not answer in time, then sends the next one', async () => {
    const { d, first: silent, second: next } = await twoDispatched('setdigout 1', 'getgps');
    // No answer: after COMMAND_TIMEOUT_MS the command fails and the queue moves on.
    expect((await readCommand(d)).payload.toString()).toBe('getgps');
    const failed = await eventually(
      async () => (await responses(silent)).find((x) => x.outcome === 'failed'),
      'timeout reported',
    );
    expect(failed?.error).toMatch(/no reply/);
    d.send(encodeCodec12Response('GPS:1 Sat:7'));
    await eventually(async () => (await outcomes(next)).includes('answered'), 'next answered');
    await eventually(async () => (await pending()) === 0, 'all acknowledged');
    d.close();
  });

  it('fails a command no frame can carry, with the reason, and keeps the session serving', async () => {
    const d = await login();
    const tooLong = await dispatch({ text: 'x'.repeat(MAX_COMMAND_BYTES + 1) });
    const next = await dispatch({ text: 'getver' });
    // The oversized one is never written; the next command on the same socket is.
    expect((await readCommand(d)).payload.toString()).toBe('getver');
    const failed = (await responses(tooLong)).find((x) => x.outcome === 'failed');
    expect(failed?.error).toMatch(new RegExp(`${MAX_COMMAND_BYTES + 1} bytes exceeds ${MAX_COMMAND_BYTES}`));
    expect(await outcomes(tooLong)).toEqual(['failed']);
    d.send(encodeCodec12Response('Ver:03.18.14_04'));
    await eventually(async () => (await outcomes(next)).includes('answered'), 'next answered');
    d.send(avlFrame(1));
    expect(await d.read(4)).toEqual(avlAck(1));
    await eventually(async () => (await pending()) === 0, 'both acknowledged');
    d.close();
  });

  it('reports expired and not_held without sending anything', async () => {
    const d = await login();
    const expired = await dispatch({ expiresAt: Date.now() - 1 });
    const elsewhere = await dispatch({ imei: IMEI_2 });
    await eventually(async () => (await outcomes(expired)).includes('expired'), 'expired reported');
    await eventually(async () => (await outcomes(elsewhere)).includes('not_held'), 'not_held reported');
    expect(await outcomes(expired)).toEqual(['expired']);
    expect(await outcomes(elsewhere)).toEqual(['not_held']);
    expect(d.available).toBe(0);
    await eventually(async () => (await pending()) === 0, 'both acknowledged');
    d.close();
  });

  it('on disconnect fails the command in flight and hands the waiting ones back as not_held', async () => {
    const d = await login();
    const inFlight = await dispatch({ text: 'getinfo' });
    const waiting = await dispatch({ text: 'getver' });
    await readCommand(d);
    await eventually(async () => (await outcomes(inFlight)).includes('sent'), 'sent');
    d.close();
    await eventually(async () => (await outcomes(inFlight)).includes('failed'), 'in-flight failed');
    await eventually(async () => (await outcomes(waiting)).includes('not_held'), 'waiting handed back');
    expect(await outcomes(waiting)).toEqual(['not_held']);
    await eventually(async () => (await pending()) === 0, 'all acknowledged');
  });

  it('at start-up reports entries a previous run read but never settled', async () => {
    const stream = stack.r.keys.commandsOutbound('cmd-b');
    await stack.r.redis.xgroup('CREATE', stream, GROUPS.outbound, '0', 'MKSTREAM');
    const leftover = await dispatch({ imei: IMEI_2 }, 'cmd-b');
    // A previous run of cmd-b read it (so it sits in cmd-b's pending list) and then crashed.
    await stack.r.redis.xreadgroup('GROUP', GROUPS.outbound, 'cmd-b', 'COUNT', 10, 'STREAMS', stream, '>');
    expect(await pending('cmd-b')).toBe(1);
    await start('cmd-b');
    await eventually(async () => (await outcomes(leftover)).includes('not_held'), 'leftover reported');
    await eventually(async () => (await pending('cmd-b')) === 0, 'leftover acknowledged');
  });
});

describe('command after a pending acknowledgement', () => {
  it('writes the command only after the ack of a frame whose XADD was still in flight', async () => {
    // A private Redis we can put to sleep (DEBUG SLEEP), so the frame's XADD and the command's
    // delivery are both held back and complete together.
    const own = await startOwnRedis({ args: ['--enable-debug-command', 'yes'] });
    const prefix = 'test:ingest:cmd-order:';
    const orderIng = await startTestIngestion(stack.db.knex, {
      instanceId: 'cmd-order',
      redisUrl: own.url,
      redisPrefix: prefix,
    });
    const admin = new Redis(own.url);
    const sleeper = new Redis(own.url);
    try {
      const d = await stack.opened.device(orderIng.tcpPort);
      expect(await d.login(IMEI)).toBe(1);
      for (let round = 0; round < 5; round++) {
        const sleeping = sleeper.call('DEBUG', 'SLEEP', '0.3');
        // Pacing only: let the server start sleeping before the frame and the command arrive.
        await new Promise((res) => setTimeout(res, 30));
        d.send(avlFrame(2));
        await admin.xadd(
          `${prefix}commands:outbound:cmd-order`,
          '*',
          ...encodeOutboundCommand({
            commandId: `o${round}`,
            imei: IMEI,
            text: `getparam ${round}`,
            expiresAt: Date.now() + 60_000,
          }),
        );
        await sleeping;
        // Whatever order Redis answers in, the device sees its ack first, then the command.
        expect(await d.read(4)).toEqual(avlAck(2));
        expect((await readCommand(d)).payload.toString()).toBe(`getparam ${round}`);
        d.send(encodeCodec12Response(`param ${round}`));
      }
    } finally {
      await orderIng.stop();
      admin.disconnect();
      sleeper.disconnect();
      await own.stop();
    }
  });
});
