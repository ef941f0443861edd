/**
 * Teltonika protocol: bytes ⇄ meaning, no I/O.
 *
 * The public API of the module (ingestion, the processor, the simulator and the extensions use
 * these names). The implementation lives in the sibling modules, each function documented where it
 * is defined; this file only re-exports.
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
  ioJsonText,
  ioToJson,
  ioValueToJson,
  namedAttributes,
  namedAttributesText,
  toHex,
} from './io-dictionary.js';
export { MAX_IMEI_LENGTH, TcpFramer } from './tcp-framer.js';
export * from './types.js';
export { decodeUdpDatagram, encodeUdpDatagram, parseUdpDatagram, type UdpHeader } from './udp.js';
