/**
 * Teltonika protocol: bytes ⇄ meaning, no I/O.
 *
 * PUBLIC API CONTRACT (ingestion, processor, simulator and extension code against these names).
 * The implementation lives in the sibling modules; this file only re-exports. Shapes may grow,
 * but names and meanings below are relied on elsewhere.
 *
 *   class ProtocolError extends Error { code: ProtocolErrorCode; offset: number }
 *   crc16ibm(buf: Uint8Array, start?: number, end?: number): number
 *
 *   // TCP
 *   class TcpFramer { constructor(opts: TcpFramerOptions); push(chunk: Buffer): TcpFrame[]; buffered: number }
 *        push() throws ProtocolError on a desynchronised stream (the caller closes the socket).
 *   checkAvlFrame(frame: Buffer): { codec: number; records: number }   // preamble, length, CRC, N1 == N2; throws ProtocolError
 *   decodeAvlFrame(frame: Buffer, opts?: AvlDecodeOptions): AvlPacket  // full decode incl. CRC; throws ProtocolError
 *   encodeAvlFrame(codec: number, records: AvlRecord[]): Buffer       // for the simulator and tests
 *   hasPositionFix(record): boolean                                   // false: no GNSS fix (0 satellites or 0/0)
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
 *   encodeCodec14Response(imei: string, text: string | Uint8Array | null): Buffer  // ACK / nACK (simulator)
 *   decodeCommandFrame(frame: Buffer): CommandFrame                     // codec 12 / 13 / 14 / 15; throws ProtocolError
 *   commandReplyText(cmd: CommandFrame): string                         // reply text, trailing CR/LF trimmed
 *   isCommandCodec(codec: number): boolean
 *
 *   // IO
 *   IO_DICTIONARY: ReadonlyMap<number, IoDefinition>   // id → { name, size, unit, scale, ... }
 *   ioToJson(io: IoList): Record<string, number | string>      // safe ints as numbers, > 2^53 as decimal strings, NX as lowercase hex
 *   namedAttributes(io: IoList, family?: IoFamily): Record<string, number | string | boolean>  // e.g. { externalVoltage: 24.079, ignition: true }
 *   ioFamilyForCodec(codec): IoFamily                  // 'fm63' for Codec 16 (ids 11/80/113/205 differ), else 'fmb'
 *
 * Encoders throw RangeError for impossible input (programmer errors); decoders throw only ProtocolError.
 */

export { avlAck, encodeImeiLogin, handshakeAck, udpAck } from './ack.js';
export {
  checkAvlFrame,
  checkEnvelope,
  codecName,
  decodeAvlData,
  decodeAvlFrame,
  hasPositionFix,
  isAvlCodec,
} from './avl.js';
export {
  type EncodableIoList,
  type EncodableRecord,
  encodeAvlData,
  encodeAvlFrame,
  wrapTcpFrame,
} from './avl-encode.js';
export { type Beacon, type BleTag, decodeBeaconList, decodeBleTags } from './ble.js';
export {
  COMMAND_TYPE,
  commandReplyText,
  decodeCommandFrame,
  encodeCodec12Command,
  encodeCodec12Response,
  encodeCodec14Command,
  encodeCodec14Response,
  isCommandCodec,
  isTextPayload,
  NACK_TYPE,
  packImei,
  RESPONSE_TYPE,
  unpackImei,
} from './commands.js';
export { crc16ibm } from './crc.js';
export { isProtocolError, ProtocolError } from './errors.js';
export {
  attributeUnits,
  FM63_OVERRIDES,
  IO_DICTIONARY,
  type IoDefinition,
  type IoFamily,
  type IoKind,
  ioFamilyForCodec,
  ioToJson,
  ioValueToJson,
  namedAttributes,
  toHex,
} from './io-dictionary.js';
export { MAX_IMEI_LENGTH, TcpFramer } from './tcp-framer.js';
export * from './types.js';
export { decodeUdpDatagram, encodeUdpDatagram, parseUdpDatagram, type UdpHeader } from './udp.js';
