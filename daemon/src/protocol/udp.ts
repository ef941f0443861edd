import { assertImei } from './ack.js';
import { decodeAvlData, isAvlCodec } from './avl.js';
import { type EncodableRecord, encodeAvlData } from './avl-encode.js';
import { ProtocolError } from './errors.js';
import { MAX_IMEI_LENGTH } from './tcp-framer.js';
import type { AvlDecodeOptions, AvlPacket } from './types.js';

export interface UdpHeader {
  packetId: number;
  avlPacketId: number;
  imei: string;
  codec: number;
  records: number;
}

/** Header fields plus where the AVL data field starts (UDP carries no CRC). */
function readHeader(buf: Buffer): UdpHeader & { dataStart: number } {
  if (buf.length < 8)
    throw new ProtocolError('BAD_UDP_HEADER', buf.length, `a UDP datagram is at least 8 bytes, got ${buf.length}`);
  const length = buf.readUInt16BE(0);
  if (length !== buf.length - 2) {
    throw new ProtocolError('BAD_UDP_HEADER', 0, `length field ${length} != ${buf.length - 2} bytes that follow it`);
  }
  const packetId = buf.readUInt16BE(2);
  const avlPacketId = buf[5]!;
  const imeiLength = buf.readUInt16BE(6);
  if (imeiLength < 1 || imeiLength > MAX_IMEI_LENGTH) {
    throw new ProtocolError('BAD_IMEI', 6, `IMEI length ${imeiLength} outside 1..${MAX_IMEI_LENGTH}`);
  }
  const dataStart = 8 + imeiLength;
  if (buf.length < dataStart + 3) {
    throw new ProtocolError('TRUNCATED', buf.length, 'datagram ends before the AVL data (codec id, N1, N2)');
  }
  for (let i = 8; i < dataStart; i++) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39)
      throw new ProtocolError('BAD_IMEI', i, `IMEI byte 0x${c.toString(16).padStart(2, '0')} is not an ASCII digit`);
  }
  const codec = buf[dataStart]!;
  if (!isAvlCodec(codec)) {
    throw new ProtocolError(
      'UNSUPPORTED_CODEC',
      dataStart,
      `codec 0x${codec.toString(16).padStart(2, '0')} is not an AVL codec (0x08, 0x8e, 0x10)`,
    );
  }
  const n1 = buf[dataStart + 1]!;
  const n2 = buf[buf.length - 1]!;
  if (n1 !== n2) {
    throw new ProtocolError(
      'RECORD_COUNT_MISMATCH',
      buf.length - 1,
      `number of data 1 (${n1}) != number of data 2 (${n2})`,
    );
  }
  return { packetId, avlPacketId, imei: buf.toString('latin1', 8, dataStart), codec, records: n1, dataStart };
}

/** The cheap check: header, IMEI, codec and N1 == N2, records not decoded. */
export function parseUdpDatagram(buf: Buffer): UdpHeader {
  const { dataStart: _, ...header } = readHeader(buf);
  return header;
}

export function decodeUdpDatagram(
  buf: Buffer,
  opts?: AvlDecodeOptions,
): { packetId: number; avlPacketId: number; imei: string; packet: AvlPacket } {
  const h = readHeader(buf);
  return {
    packetId: h.packetId,
    avlPacketId: h.avlPacketId,
    imei: h.imei,
    packet: { codec: h.codec, records: decodeAvlData(buf, h.dataStart, buf.length, opts) },
  };
}

/** A datagram as a device sends it (simulator, tests). */
export function encodeUdpDatagram(
  packetId: number,
  avlPacketId: number,
  imei: string,
  codec: number,
  records: readonly EncodableRecord[],
): Buffer {
  assertImei(imei);
  if (!Number.isInteger(packetId) || packetId < 0 || packetId > 0xffff) throw new RangeError(`packet id ${packetId}`);
  if (!Number.isInteger(avlPacketId) || avlPacketId < 0 || avlPacketId > 0xff) {
    throw new RangeError(`AVL packet id ${avlPacketId}`);
  }
  const data = encodeAvlData(codec, records);
  const size = 8 + imei.length + data.length;
  if (size - 2 > 0xffff) throw new RangeError(`datagram of ${size} bytes exceeds the 16-bit length field`);
  const buf = Buffer.alloc(size);
  buf.writeUInt16BE(size - 2, 0);
  buf.writeUInt16BE(packetId, 2);
  buf[4] = 1;
  buf[5] = avlPacketId;
  buf.writeUInt16BE(imei.length, 6);
  buf.write(imei, 8, 'latin1');
  buf.set(data, 8 + imei.length);
  return buf;
}
