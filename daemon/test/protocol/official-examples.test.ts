import { describe, expect, it } from 'vitest';
import {
  type AvlRecord,
  avlAck,
  checkAvlFrame,
  commandReplyText,
  decodeAvlFrame,
  decodeBeaconList,
  decodeCommandFrame,
  decodeUdpDatagram,
  encodeAvlFrame,
  encodeCodec12Command,
  encodeCodec12Response,
  encodeCodec14Command,
  encodeImeiLogin,
  encodeUdpDatagram,
  handshakeAck,
  ioToJson,
  namedAttributes,
  parseUdpDatagram,
  TcpFramer,
  udpAck,
} from '../../src/protocol/index.js';
import { catchError } from './helpers.js';
import {
  AVL_EXAMPLES,
  BAD_CRC_EXAMPLES,
  COMMAND_EXAMPLES,
  type ExpectedRecord,
  IMEI_LOGIN_EXAMPLE,
} from './official-examples.js';

function expectRecord(actual: AvlRecord, expected: ExpectedRecord): void {
  expect(new Date(actual.timestamp).toISOString()).toBe(expected.timestamp);
  expect(actual.priority).toBe(expected.priority);
  expect(actual.longitude).toBe(expected.longitude);
  expect(actual.latitude).toBe(expected.latitude);
  expect(actual.altitude).toBe(expected.altitude);
  expect(actual.angle).toBe(expected.angle);
  expect(actual.satellites).toBe(expected.satellites);
  expect(actual.speed).toBe(expected.speed);
  expect(actual.eventIoId).toBe(expected.eventIoId);
  expect(actual.generationType).toBe(expected.generationType);
  const json = ioToJson(actual.io);
  expect(actual.io.ids).toEqual(expected.io.map(([id]) => id));
  expect(expected.io.map(([id]) => json[id])).toEqual(expected.io.map(([, v]) => v));
}

describe('official AVL examples', () => {
  for (const ex of AVL_EXAMPLES) {
    it(`${ex.name} decodes to the published values`, () => {
      const bytes = Buffer.from(ex.hex, 'hex');
      if (ex.transport === 'tcp') {
        expect(checkAvlFrame(bytes)).toEqual({ codec: ex.codec, records: ex.records.length });
        const packet = decodeAvlFrame(bytes);
        expect(packet.codec).toBe(ex.codec);
        expect(packet.records).toHaveLength(ex.records.length);
        for (const [i, r] of packet.records.entries()) expectRecord(r, ex.records[i]!);
        expect(avlAck(packet.records.length).toString('hex').toUpperCase()).toBe(ex.ack);
      } else {
        expect(parseUdpDatagram(bytes)).toEqual({ ...ex.udp, codec: ex.codec, records: ex.records.length });
        const d = decodeUdpDatagram(bytes);
        expect({ packetId: d.packetId, avlPacketId: d.avlPacketId, imei: d.imei }).toEqual(ex.udp);
        for (const [i, r] of d.packet.records.entries()) expectRecord(r, ex.records[i]!);
        expect(udpAck(d.packetId, d.avlPacketId, d.packet.records.length).toString('hex').toUpperCase()).toBe(ex.ack);
      }
    });
  }

  it('re-encodes the FMB examples byte for byte (encoder matches what devices send)', () => {
    for (const ex of AVL_EXAMPLES.filter((e) => e.codec !== 0x10)) {
      const bytes = Buffer.from(ex.hex, 'hex');
      if (ex.transport === 'tcp') {
        const p = decodeAvlFrame(bytes);
        expect(encodeAvlFrame(p.codec, p.records).toString('hex')).toBe(ex.hex.toLowerCase());
      } else {
        const d = decodeUdpDatagram(bytes);
        const again = encodeUdpDatagram(d.packetId, d.avlPacketId, d.imei, d.packet.codec, d.packet.records);
        expect(again.toString('hex')).toBe(ex.hex.toLowerCase());
      }
    }
  });

  it('names IO with units from the dictionary (66 → external voltage in volts)', () => {
    const p = decodeAvlFrame(Buffer.from(AVL_EXAMPLES[0]!.hex, 'hex'));
    expect(namedAttributes(p.records[0]!.io)).toEqual({
      gsmSignal: 3,
      digitalInput1: true,
      externalVoltage: 24.079,
      activeGsmOperator: 24602,
      iButton: '0000000000000000',
    });
    const e = decodeAvlFrame(Buffer.from(AVL_EXAMPLES[3]!.hex, 'hex'));
    const attrs = namedAttributes(e.records[0]!.io);
    expect(attrs.totalOdometer).toBe(22949000);
    expect(attrs.axisX).toBe(29);
    expect(attrs.iccid).toBe('8937002180500686954');
  });
});

describe('official beacon record', () => {
  it('decodes the beacon list (id 385): 5 iBeacons and 3 Eddystone with RSSI, battery, temperature', () => {
    const ex = AVL_EXAMPLES.find((e) => e.name.startsWith('Beacon'))!;
    const rec = decodeAvlFrame(Buffer.from(ex.hex, 'hex')).records[0]!;
    const list = decodeBeaconList(rec.io.values[0] as Uint8Array)!;
    expect(list).toMatchObject({ part: 1, parts: 1 });
    expect(list.beacons).toHaveLength(8);
    expect(list.beacons.filter((b) => b.kind === 'ibeacon')).toHaveLength(5);
    expect(list.beacons.filter((b) => b.kind === 'eddystone')).toHaveLength(3);
    expect(list.beacons[0]).toEqual({
      kind: 'ibeacon',
      id: '4b5c049f515341fca950d2c264414e10' + '0005' + '0006',
      rssi: -70,
    });
    expect(list.beacons.find((b) => b.id === '00112233445566778899abcde0810047')).toEqual({
      kind: 'eddystone',
      id: '00112233445566778899abcde0810047',
      rssi: -82,
      battery: 3048,
      temperature: 21,
    });
    const attrs = namedAttributes(rec.io);
    expect(attrs.beacon1Rssi).toBe(-70);
    expect(attrs.beacon8Kind).toBe('eddystone');
  });
});

describe('official command examples', () => {
  for (const ex of COMMAND_EXAMPLES) {
    it(`${ex.name} decodes`, () => {
      const c = decodeCommandFrame(Buffer.from(ex.hex, 'hex'));
      expect(c.codec).toBe(ex.codec);
      expect(c.type).toBe(ex.type);
      expect(commandReplyText(c)).toBe(ex.text);
      expect(c.imei).toBe(ex.imei ?? null);
      expect(c.timestamp === null ? null : new Date(c.timestamp).toISOString()).toBe(ex.timestamp ?? null);
    });
    const enc = ex.encode;
    if (enc) {
      it(`${ex.name} is what our encoder produces`, () => {
        const out =
          enc.kind === 'codec12-command'
            ? encodeCodec12Command(enc.input)
            : enc.kind === 'codec12-response'
              ? encodeCodec12Response(enc.input)
              : encodeCodec14Command(enc.imei!, enc.input);
        expect(out.toString('hex')).toBe(ex.hex.toLowerCase());
      });
    }
  }

  for (const ex of BAD_CRC_EXAMPLES) {
    it(`${ex.name} is refused with CRC_MISMATCH, and decodes when the CRC is skipped`, () => {
      const bytes = Buffer.from(ex.hex, 'hex');
      const err = catchError(() => decodeCommandFrame(bytes));
      expect(err.code).toBe('CRC_MISMATCH');
      expect(err.offset).toBe(bytes.length - 4);
      expect(err.message).toContain(ex.computed.toString(16));
      const c = decodeCommandFrame(bytes, { skipCrc: true });
      expect(c).toMatchObject({ codec: 0x0e, type: 0x11, imei: '352093081452468' });
      expect(c.payload).toHaveLength(0);
    });
  }
});

describe('official login and acknowledgements', () => {
  it('frames the IMEI login and answers with one byte', () => {
    const framer = new TcpFramer({ maxFrameBytes: 2048 });
    expect(framer.push(Buffer.from(IMEI_LOGIN_EXAMPLE.hex, 'hex'))).toEqual([
      { kind: 'imei', imei: IMEI_LOGIN_EXAMPLE.imei },
    ]);
    expect(encodeImeiLogin(IMEI_LOGIN_EXAMPLE.imei).toString('hex').toUpperCase()).toBe(IMEI_LOGIN_EXAMPLE.hex);
    expect(handshakeAck(true).toString('hex')).toBe('01');
    expect(handshakeAck(false).toString('hex')).toBe('00');
    expect(avlAck(0).toString('hex')).toBe('00000000');
    expect(avlAck(2).toString('hex')).toBe('00000002');
  });
});
