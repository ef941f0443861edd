import { ProtocolError } from './errors.js';
import { MAX_IMEI_LENGTH } from './tcp-framer.js';

/** Reply to an IMEI login: exactly one byte, 01 accept / 00 reject. */
export function handshakeAck(accept: boolean): Buffer {
  return Buffer.from([accept ? 1 : 0]);
}

/** Reply to a TCP AVL packet: the accepted record count as 4 bytes BE; 0 refuses it (the device resends). */
export function avlAck(records: number): Buffer {
  if (!Number.isInteger(records) || records < 0 || records > 255) {
    throw new RangeError(`record count must be an integer 0..255, got ${records}`);
  }
  const b = Buffer.alloc(4);
  b[3] = records;
  return b;
}

/** Reply to a UDP datagram: 0005 | packet id | 01 | AVL packet id | accepted count (both ids echoed). */
export function udpAck(packetId: number, avlPacketId: number, accepted: number): Buffer {
  if (!Number.isInteger(packetId) || packetId < 0 || packetId > 0xffff) throw new RangeError(`packet id ${packetId}`);
  if (!Number.isInteger(avlPacketId) || avlPacketId < 0 || avlPacketId > 0xff) {
    throw new RangeError(`AVL packet id ${avlPacketId}`);
  }
  if (!Number.isInteger(accepted) || accepted < 0 || accepted > 0xff) throw new RangeError(`accepted ${accepted}`);
  const b = Buffer.alloc(7);
  b[1] = 5;
  b.writeUInt16BE(packetId, 2);
  b[4] = 1;
  b[5] = avlPacketId;
  b[6] = accepted;
  return b;
}

/** Throws BAD_IMEI unless `imei` is 1..maxLength ASCII digits. */
export function assertImei(imei: string, maxLength = MAX_IMEI_LENGTH): void {
  if (imei.length < 1 || imei.length > maxLength || !/^[0-9]+$/.test(imei)) {
    throw new ProtocolError('BAD_IMEI', 0, `IMEI must be 1..${maxLength} ASCII digits, got ${JSON.stringify(imei)}`);
  }
}

/** The login a device sends first on a TCP connection: 2-byte length + ASCII digits. */
export function encodeImeiLogin(imei: string): Buffer {
  assertImei(imei);
  const b = Buffer.alloc(2 + imei.length);
  b.writeUInt16BE(imei.length, 0);
  b.write(imei, 2, 'latin1');
  return b;
}
