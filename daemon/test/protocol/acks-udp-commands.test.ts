import { describe, expect, it } from 'vitest';
import {
  avlAck,
  checkAvlFrame,
  commandReplyText,
  crc16ibm,
  decodeAvlFrame,
  decodeCommandFrame,
  encodeAvlFrame,
  encodeCodec12Command,
  encodeCodec14Command,
  encodeCodec14Response,
  encodeImeiLogin,
  encodeUdpDatagram,
  IO_DICTIONARY,
  ioFamilyForCodec,
  isCommandCodec,
  NACK_TYPE,
  namedAttributes,
  parseUdpDatagram,
  udpAck,
} from '../../src/protocol/index.js';
import { catchError, encodableRecord } from './helpers.js';

/** Rewrites the CRC so a deliberately inconsistent frame reaches the structural checks. */
function fixCrc(frame: Buffer): Buffer {
  frame.writeUInt32BE(crc16ibm(frame, 8, frame.length - 4), frame.length - 4);
  return frame;
}

describe('acknowledgements', () => {
  it('TCP: record count as 4 bytes, 0 refuses', () => {
    expect(avlAck(0).toString('hex')).toBe('00000000');
    expect(avlAck(255).toString('hex')).toBe('000000ff');
    expect(() => avlAck(256)).toThrow(RangeError);
    expect(() => avlAck(-1)).toThrow(RangeError);
  });

  it('UDP: echoes packet id and AVL packet id', () => {
    expect(udpAck(0x1234, 0xab, 3).toString('hex')).toBe('0005123401ab03');
    expect(() => udpAck(0x10000, 0, 0)).toThrow(RangeError);
  });

  it('IMEI login encoder refuses non-digits', () => {
    expect(catchError(() => encodeImeiLogin('35630704244101x')).code).toBe('BAD_IMEI');
    expect(catchError(() => encodeImeiLogin('')).code).toBe('BAD_IMEI');
  });
});

describe('UDP datagrams', () => {
  const good = encodeUdpDatagram(0xcafe, 9, '352093086403655', 0x08, [encodableRecord()]);

  it('refuses a length field that does not match the datagram', () => {
    const bad = Buffer.from(good);
    bad.writeUInt16BE(good.length, 0);
    const err = catchError(() => parseUdpDatagram(bad));
    expect(err.code).toBe('BAD_UDP_HEADER');
    expect(err.offset).toBe(0);
  });

  it('refuses the Codec 16 UDP example as printed on the wiki (broken length field)', () => {
    const printed = Buffer.from(
      '015BCAFE0101000F33353230393430383532333135393210070000015117E40FE80000000000000000000000000000000000EF05050400010000030000B40000EF01010042111A000001',
      'hex',
    );
    expect(catchError(() => parseUdpDatagram(printed)).code).toBe('BAD_UDP_HEADER');
  });

  it('refuses a non-digit IMEI, a command codec and N1 != N2', () => {
    const imei = Buffer.from(good);
    imei[10] = 0x41;
    expect(catchError(() => parseUdpDatagram(imei))).toMatchObject({ code: 'BAD_IMEI', offset: 10 });
    const codec = Buffer.from(good);
    codec[23] = 0x0c;
    expect(catchError(() => parseUdpDatagram(codec))).toMatchObject({ code: 'UNSUPPORTED_CODEC', offset: 23 });
    const count = Buffer.from(good);
    count[count.length - 1] = 2;
    expect(catchError(() => parseUdpDatagram(count)).code).toBe('RECORD_COUNT_MISMATCH');
  });
});

describe('AVL structure checks', () => {
  it('refuses N1 != N2 even with a valid CRC', () => {
    const f = encodeAvlFrame(0x8e, [encodableRecord(), encodableRecord()]);
    f[f.length - 5] = 1;
    const err = catchError(() => checkAvlFrame(fixCrc(f)));
    expect(err).toMatchObject({ code: 'RECORD_COUNT_MISMATCH', offset: f.length - 5 });
  });

  it('refuses records that do not end exactly on N2', () => {
    const f = encodeAvlFrame(0x08, [encodableRecord(), encodableRecord()]);
    f[9] = 1;
    f[f.length - 5] = 1;
    fixCrc(f);
    expect(checkAvlFrame(f)).toEqual({ codec: 8, records: 1 }); // the cheap check cannot see it…
    expect(catchError(() => decodeAvlFrame(f)).code).toBe('TRAILING_BYTES'); // …the full decode does
  });

  it('refuses command frames on the AVL path with a message saying so', () => {
    const err = catchError(() => checkAvlFrame(encodeCodec12Command('getinfo')));
    expect(err.code).toBe('UNSUPPORTED_CODEC');
    expect(err.message).toMatch(/command frame/);
  });

  it('recognises no-fix records: satellites 0 and coordinates 0/0 decode as such', () => {
    const [r] = decodeAvlFrame(
      encodeAvlFrame(0x08, [encodableRecord({ satellites: 0, longitude: 0, latitude: 0 })]),
    ).records;
    expect(r).toMatchObject({ satellites: 0, longitude: 0, latitude: 0 });
  });

  it('encoders refuse impossible records', () => {
    expect(() => encodeAvlFrame(0x08, [encodableRecord({ io: { ids: [300], values: [1] } })])).toThrow(RangeError);
    expect(() => encodeAvlFrame(0x08, [encodableRecord({ io: { ids: [256], values: [new Uint8Array(3)] } })])).toThrow(
      RangeError,
    );
    expect(() => encodeAvlFrame(0x07, [])).toThrow(RangeError);
  });
});

describe('commands', () => {
  it('encodes a binary Codec 12 payload as given', () => {
    expect(encodeCodec12Command(Buffer.from('03030000000185E8', 'hex')).toString('hex')).toBe(
      '00000000000000100c01050000000803030000000185e8010000da8b',
    );
  });

  it('refuses empty or oversized commands and bad Codec 14 IMEIs', () => {
    expect(catchError(() => encodeCodec12Command('')).code).toBe('BAD_COMMAND');
    expect(catchError(() => encodeCodec12Command('x'.repeat(5000))).code).toBe('BAD_COMMAND');
    expect(catchError(() => encodeCodec14Command('35209308145225a', 'getver')).code).toBe('BAD_IMEI');
    expect(catchError(() => encodeCodec14Command('12345678901234567', 'getver')).code).toBe('BAD_IMEI');
  });

  it('round-trips Codec 14 ACK and nACK as a device sends them', () => {
    const ack = decodeCommandFrame(encodeCodec14Response('352093081452251', 'Ver:03.18.14_04\r\n'));
    expect(ack).toMatchObject({ codec: 0x0e, type: 0x06, imei: '352093081452251' });
    expect(commandReplyText(ack)).toBe('Ver:03.18.14_04');
    const nack = decodeCommandFrame(encodeCodec14Response('352093081452468', null));
    expect(nack).toMatchObject({ codec: 0x0e, type: NACK_TYPE, imei: '352093081452468' });
    expect(nack.payload).toHaveLength(0);
  });

  it('refuses a size field that disagrees with the frame, and AVL frames', () => {
    const f = encodeCodec12Command('getinfo');
    f.writeUInt32BE(8, 11);
    expect(catchError(() => decodeCommandFrame(fixCrc(f))).code).toBe('BAD_COMMAND');
    const q = encodeCodec12Command('getinfo');
    q[q.length - 5] = 2;
    expect(catchError(() => decodeCommandFrame(fixCrc(q))).code).toBe('RECORD_COUNT_MISMATCH');
    expect(catchError(() => decodeCommandFrame(encodeAvlFrame(0x08, [encodableRecord()]))).code).toBe(
      'UNSUPPORTED_CODEC',
    );
    expect([0x0c, 0x0d, 0x0e, 0x0f].every(isCommandCodec)).toBe(true);
    expect(isCommandCodec(0x08)).toBe(false);
  });
});

describe('IO dictionary', () => {
  it('covers the reference ids with name, size, unit and scale', () => {
    const ids = [1, 2, 3, 9, 11, 12, 13, 14, 16, 17, 18, 19, 21, 24, 66, 67, 68, 69, 78, 80, 113, 179, 180, 181, 182];
    ids.push(199, 200, 205, 206, 239, 240, 241, 246, 247, 249, 250, 251, 252, 253, 254, 255, 256, 281, 385);
    for (const id of ids) expect(IO_DICTIONARY.get(id), `id ${id}`).toBeDefined();
    expect(IO_DICTIONARY.get(66)).toMatchObject({ name: 'externalVoltage', size: 2, unit: 'V', scale: 0.001 });
  });

  it('applies sign and scale, and leaves unknown ids out of the named attributes', () => {
    const attrs = namedAttributes({ ids: [17, 72, 181, 9999, 239], values: [0xffe5, 0xffffff9c, 11, 5, 1] });
    expect(attrs).toEqual({ axisX: -27, dallasTemperature1: -10, gnssPdop: 1.1, ignition: true });
  });
});

describe('IO families', () => {
  it('reads Codec 16 (FM63xx) id 11 as analog input 3, not as half an ICCID', () => {
    const io = { ids: [11, 66], values: [39, 22074] };
    expect(namedAttributes(io, ioFamilyForCodec(0x10))).toEqual({ analogInput3: 0.039, externalVoltage: 22.074 });
    expect(namedAttributes(io, ioFamilyForCodec(0x8e))).toEqual({ iccid1: 39, externalVoltage: 22.074 });
  });
});
