/**
 * Teltonika protocol: bytes ⇄ meaning, no I/O.
 *
 * PUBLIC API CONTRACT (ingestion, processor, simulator and extension code against these names).
 * The implementation lives in the sibling modules; this file only re-exports. Shapes may grow,
 * but names and meanings below are relied on elsewhere.
 */

/** AVL codec ids accepted for telemetry. */
export const CODEC_8 = 0x08;
export const CODEC_8E = 0x8e;
export const CODEC_16 = 0x10;
export const CODEC_12 = 0x0c;
export const CODEC_13 = 0x0d;
export const CODEC_14 = 0x0e;

export type IoValue = number | bigint | Uint8Array;

/** IO elements of one record, in frame order (flat arrays: cheaper than an object per record). */
export interface IoList {
  ids: number[];
  values: IoValue[];
}

export interface AvlRecord {
  /** Fix time, epoch milliseconds (UTC). */
  timestamp: number;
  priority: number;
  /** Degrees, WGS84, signed. */
  longitude: number;
  latitude: number;
  /** Metres, signed. */
  altitude: number;
  /** Heading in degrees 0-360. */
  angle: number;
  satellites: number;
  /** km/h. */
  speed: number;
  eventIoId: number;
  /** Codec 16 only (generation type), otherwise null. */
  generationType: number | null;
  io: IoList;
}

export interface AvlPacket {
  codec: number;
  records: AvlRecord[];
}

export type ProtocolErrorCode =
  | 'BAD_PREAMBLE'
  | 'LENGTH_TOO_SMALL'
  | 'LENGTH_EXCEEDED'
  | 'BAD_IMEI'
  | 'TRUNCATED'
  | 'CRC_MISMATCH'
  | 'RECORD_COUNT_MISMATCH'
  | 'UNSUPPORTED_CODEC'
  | 'BAD_UDP_HEADER'
  | 'TRAILING_BYTES'
  | 'BAD_COMMAND';

/*
 * Functions this module exports (implemented in sibling files, re-exported here):
 *
 *   class ProtocolError extends Error { code: ProtocolErrorCode; offset: number }
 *   crc16ibm(buf: Uint8Array, start?: number, end?: number): number
 *
 *   // TCP
 *   class TcpFramer { constructor(opts: TcpFramerOptions); push(chunk: Buffer): TcpFrame[]; buffered: number }
 *        push() throws ProtocolError on a desynchronised stream (the caller closes the socket).
 *   checkAvlFrame(frame: Buffer): { codec: number; records: number }   // preamble, length, CRC, N1 == N2; throws ProtocolError
 *   decodeAvlFrame(frame: Buffer): AvlPacket                         // full decode incl. CRC; throws ProtocolError
 *   encodeAvlFrame(codec: number, records: AvlRecord[]): Buffer       // for the simulator and tests
 *
 *   // UDP
 *   parseUdpDatagram(buf: Buffer): { packetId: number; avlPacketId: number; imei: string; codec: number; records: number }
 *   decodeUdpDatagram(buf: Buffer): { packetId; avlPacketId; imei; packet: AvlPacket }
 *   encodeUdpDatagram(packetId: number, avlPacketId: number, imei: string, codec: number, records: AvlRecord[]): Buffer
 *   udpAck(packetId: number, avlPacketId: number, accepted: number): Buffer   // 7 bytes
 *
 *   // Acknowledgements (TCP)
 *   handshakeAck(accept: boolean): Buffer          // 01 / 00
 *   avlAck(records: number): Buffer                // 4-byte BE count; 0 refuses the packet
 *   encodeImeiLogin(imei: string): Buffer          // for the simulator
 *
 *   // Commands
 *   encodeCodec12Command(command: string | Uint8Array): Buffer          // type 0x05
 *   encodeCodec12Response(text: string | Uint8Array): Buffer            // type 0x06 (simulator)
 *   encodeCodec14Command(imei: string, command: string | Uint8Array): Buffer
 *   decodeCommandFrame(frame: Buffer): CommandFrame                     // codec 12 / 13 / 14; throws ProtocolError
 *   isCommandCodec(codec: number): boolean
 *
 *   // IO
 *   IO_DICTIONARY: ReadonlyMap<number, IoDefinition>   // id → { name, size, unit, scale, ... }
 *   ioToJson(io: IoList): Record<string, number | string>      // safe ints as numbers, > 2^53 as decimal strings, NX as lowercase hex
 *   namedAttributes(io: IoList): Record<string, number | string | boolean>  // e.g. { externalVoltage: 24.079, ignition: true }
 */

/** What the TCP framer yields, in stream order. */
export type TcpFrame =
  | { kind: 'ping' }
  | { kind: 'imei'; imei: string }
  /** A whole data or command frame (preamble … CRC), codec id at byte 8; CRC not yet checked. */
  | { kind: 'frame'; codec: number; bytes: Buffer };

export interface TcpFramerOptions {
  /** Largest accepted data field length D; larger → LENGTH_EXCEEDED before allocating. */
  maxFrameBytes: number;
}
