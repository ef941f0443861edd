import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { type DecodeIo, runDecode } from '../../src/protocol/decode-cli.js';
import {
  type EncodableRecord,
  encodeAvlFrame,
  encodeCodec12Response,
  encodeImeiLogin,
  encodeUdpDatagram,
} from '../../src/protocol/index.js';
import { zeroGps } from './official-examples.js';

const CODEC8_EX1 =
  '000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF';

async function run(argv: string[], stdin: Buffer | null = null): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const input = stdin === null ? Object.assign(Readable.from([]), { isTTY: true }) : Readable.from([stdin]);
  const io: DecodeIo = {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    stdin: input,
  };
  const code = await runDecode(argv, io);
  return { code, out, err };
}

const dir = mkdtempSync(join(tmpdir(), 'decode-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const record = (io: EncodableRecord['io']): EncodableRecord => ({
  timestamp: Date.UTC(2026, 10, 25, 12, 0, 0),
  priority: 0,
  longitude: -70.7196233,
  latitude: -33.7335583,
  altitude: -6,
  angle: 90,
  satellites: 9,
  speed: 42,
  eventIoId: 0,
  io,
});

describe('decode CLI', () => {
  it('prints an AVL frame as JSON (codec number, ISO time, degrees, io by id, named attributes)', async () => {
    const { code, out } = await run([CODEC8_EX1]);
    expect(code).toBe(0);
    const json = JSON.parse(out);
    expect(json).toMatchObject({
      codec: 8,
      crcOk: true,
      ack: '00000001',
      records: [
        {
          timestamp: '2019-06-10T10:04:46.000Z',
          ...zeroGps,
          eventIoId: 1,
          fix: false,
          io: { 1: 1, 21: 3, 66: 24079, 78: 0, 241: 24602 },
          attributes: { externalVoltage: 24.079, digitalInput1: true, gsmSignal: 3 },
          units: { externalVoltage: 'V' },
        },
      ],
    });
  });

  it('keeps 8-byte values beyond 2^53 as decimal strings and NX values as lowercase hex', async () => {
    const frame = encodeAvlFrame(0x8e, [
      record({ ids: [78, 256], values: [2n ** 63n + 1n, Buffer.from('WVWZZZ1JZXW000001')] }),
    ]);
    const json = JSON.parse((await run([frame.toString('hex')])).out);
    expect(json.codec).toBe(142);
    expect(json.records[0].io).toEqual({
      78: '9223372036854775809',
      256: Buffer.from('WVWZZZ1JZXW000001').toString('hex'),
    });
    expect(json.records[0].attributes.vin).toBe('WVWZZZ1JZXW000001');
    expect(json.records[0]).toMatchObject({ longitude: -70.7196233, latitude: -33.7335583, altitude: -6 });
    expect(json.records[0].fix).toBeUndefined();
  });

  it('prints a command response as codec, type and text', async () => {
    const { code, out } = await run([encodeCodec12Response('DI1:1 DO1:0\r\n').toString('hex')]);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ codec: 12, type: 6, text: 'DI1:1 DO1:0', crcOk: true });
  });

  it('refuses a bad frame with the typed error, a hint and a non-zero exit', async () => {
    const { code, out } = await run([`${CODEC8_EX1.slice(0, -1)}E`]);
    expect(code).toBe(1);
    const json = JSON.parse(out);
    expect(json.error).toMatchObject({ code: 'CRC_MISMATCH', offset: 62 });
    expect(json.error.message).toContain('0xc7cf');
    expect(json.hint).toMatch(/--ignore-crc/);
  });

  it('decodes a bad-CRC frame anyway with --ignore-crc and says so', async () => {
    const { code, out } = await run(['--ignore-crc', `${CODEC8_EX1.slice(0, -1)}E`]);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ codec: 8, crcOk: false });
  });

  it('reports a cut capture as TRUNCATED', async () => {
    const { code, out } = await run([CODEC8_EX1.slice(0, 60)]);
    expect(code).toBe(1);
    expect(JSON.parse(out).error.code).toBe('TRUNCATED');
  });

  it('reads a file of hex lines, one capture per line', async () => {
    const file = join(dir, 'captures.txt');
    writeFileSync(file, `# two captures\n${CODEC8_EX1}\n\n000f333536333037303432343431303133\n`);
    const { code, out } = await run(['-f', file]);
    expect(code).toBe(0);
    const json = JSON.parse(out);
    expect(json).toHaveLength(2);
    expect(json[0].codec).toBe(8);
    expect(json[1].imei).toBe('356307042441013');
  });

  it('reads a raw TCP stream on stdin (ping, login, frame, reply)', async () => {
    const stream = Buffer.concat([
      Buffer.from([0xff]),
      encodeImeiLogin('356307042441013'),
      Buffer.from(CODEC8_EX1, 'hex'),
      encodeCodec12Response('OK'),
    ]);
    const { code, out } = await run([], stream);
    expect(code).toBe(0);
    const json = JSON.parse(out);
    expect(json.map((x: Record<string, unknown>) => Object.keys(x)[0])).toEqual(['ping', 'imei', 'codec', 'codec']);
    expect(json[3]).toMatchObject({ codec: 12, text: 'OK' });
  });

  it('recognises a UDP datagram and shows the reply to send', async () => {
    const dgram = encodeUdpDatagram(0xcafe, 7, '352093086403655', 0x08, [record({ ids: [66], values: [12000] })]);
    const json = JSON.parse((await run([dgram.toString('hex')])).out);
    expect(json).toMatchObject({ transport: 'udp', packetId: 0xcafe, avlPacketId: 7, ack: '0005cafe010701' });
    expect(json.records[0].attributes.externalVoltage).toBe(12);
  });

  it('explains unusable input and exits 2', async () => {
    expect((await run(['00zz'])).code).toBe(2);
    const odd = await run(['000']);
    expect(odd.code).toBe(2);
    expect(odd.err).toMatch(/odd number of hex digits/);
    expect((await run([])).code).toBe(2);
  });
});
