import { MAX_COMMAND_BYTES } from '../contract/limits.js';
import { checkEnvelope, codecName } from './avl.js';
import { wrapTcpFrame } from './avl-encode.js';
import { ProtocolError } from './errors.js';
import { CODEC_12, CODEC_13, CODEC_14, CODEC_15, type CommandFrame } from './types.js';

/** Codec 12/14 type byte: server → device command. */
export const COMMAND_TYPE = 0x05;
/** Codec 12 response / Codec 14 ACK (command executed). */
export const RESPONSE_TYPE = 0x06;
/** Codec 14 nACK: the IMEI in the command was not the device's own; nothing executed. */
export const NACK_TYPE = 0x11;

/** Largest command payload we encode: the contract's one limit (re-exported for protocol users). */
export { MAX_COMMAND_BYTES };

/** Unix seconds for 2000-01-01: Codec 13 timestamps before it are read as 8-byte milliseconds instead. */
const Y2000_S = 946684800;
const Y2100_MS = 4102444800000;

export function isCommandCodec(codec: number): boolean {
  return codec === CODEC_12 || codec === CODEC_13 || codec === CODEC_14 || codec === CODEC_15;
}

function commandBytes(command: string | Uint8Array): Buffer {
  const bytes = typeof command === 'string' ? Buffer.from(command, 'utf8') : Buffer.from(command);
  if (bytes.length === 0) throw new ProtocolError('BAD_COMMAND', 0, 'empty command');
  if (bytes.length > MAX_COMMAND_BYTES) {
    throw new ProtocolError('BAD_COMMAND', 0, `command of ${bytes.length} bytes exceeds ${MAX_COMMAND_BYTES}`);
  }
  return bytes;
}

/** codec | q1=1 | type | size(4) | extra | payload | q2=1, wrapped with preamble, length and CRC. */
function encodeCommandFrame(codec: number, type: number, extra: Uint8Array | null, payload: Uint8Array): Buffer {
  const extraLen = extra ? extra.length : 0;
  const size = extraLen + payload.length;
  const data = Buffer.alloc(8 + size);
  data[0] = codec;
  data[1] = 1;
  data[2] = type;
  data.writeUInt32BE(size, 3);
  if (extra) data.set(extra, 7);
  data.set(payload, 7 + extraLen);
  data[7 + size] = 1;
  return wrapTcpFrame(data);
}

/** Codec 12 command (type 0x05): the SMS command text without login/password, e.g. "getinfo". */
export function encodeCodec12Command(command: string | Uint8Array): Buffer {
  return encodeCommandFrame(CODEC_12, COMMAND_TYPE, null, commandBytes(command));
}

/** Codec 12 response (type 0x06) as a device sends it (simulator). An empty reply is allowed. */
export function encodeCodec12Response(text: string | Uint8Array): Buffer {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text);
  return encodeCommandFrame(CODEC_12, RESPONSE_TYPE, null, bytes);
}

/** IMEI as 8 bytes of BCD, left-padded with zero nibbles to 16 digits. */
export function packImei(imei: string): Buffer {
  if (!/^[0-9]{1,16}$/.test(imei)) {
    throw new ProtocolError('BAD_IMEI', 0, `Codec 14 IMEI must be 1..16 ASCII digits, got ${JSON.stringify(imei)}`);
  }
  return Buffer.from(imei.padStart(16, '0'), 'hex');
}

/** Reverse of packImei; the padding zero nibble in front of a 15-digit IMEI is dropped. */
export function unpackImei(bytes: Uint8Array, offset: number): string {
  let s = '';
  for (let i = 0; i < 8; i++) {
    const b = bytes[offset + i]!;
    const hi = b >> 4;
    const lo = b & 0x0f;
    if (hi > 9 || lo > 9) {
      throw new ProtocolError(
        'BAD_IMEI',
        offset + i,
        `IMEI byte 0x${b.toString(16).padStart(2, '0')} is not two BCD digits`,
      );
    }
    s += `${hi}${lo}`;
  }
  return s.replace(/^0(?=\d{15}$)/, '');
}

/** Codec 14 command addressed to one IMEI; a device with another IMEI answers nACK (0x11). */
export function encodeCodec14Command(imei: string, command: string | Uint8Array): Buffer {
  return encodeCommandFrame(CODEC_14, COMMAND_TYPE, packImei(imei), commandBytes(command));
}

/** Codec 14 reply as a device sends it (simulator): ACK (0x06) with text, or nACK (0x11) when text is null. */
export function encodeCodec14Response(imei: string, text: string | Uint8Array | null): Buffer {
  if (text === null) return encodeCommandFrame(CODEC_14, NACK_TYPE, packImei(imei), Buffer.alloc(0));
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text);
  return encodeCommandFrame(CODEC_14, RESPONSE_TYPE, packImei(imei), bytes);
}

/** Decodes a Codec 12/13/14/15 TCP frame (CRC checked). Never ACK these frames. */
export function decodeCommandFrame(frame: Buffer, opts?: { skipCrc?: boolean }): CommandFrame {
  const d = checkEnvelope(frame, opts?.skipCrc === true);
  const codec = frame[8]!;
  if (codec !== CODEC_12 && codec !== CODEC_13 && codec !== CODEC_14 && codec !== CODEC_15) {
    throw new ProtocolError('UNSUPPORTED_CODEC', 8, `${codecName(codec)} is not a command codec (0x0c..0x0f)`);
  }
  if (d < 8) throw new ProtocolError('TRUNCATED', 8 + d, `${codecName(codec)} needs at least 8 data bytes, got ${d}`);
  const q1 = frame[9]!;
  const type = frame[10]!;
  const size = frame.readUInt32BE(11);
  const q2At = 8 + d - 1;
  const q2 = frame[q2At]!;
  if (15 + size !== q2At) {
    throw new ProtocolError(
      'BAD_COMMAND',
      11,
      `size field ${size} does not match the frame (data length ${d} leaves ${q2At - 15} payload bytes)`,
    );
  }
  if (q1 !== q2) throw new ProtocolError('RECORD_COUNT_MISMATCH', q2At, `quantity 1 (${q1}) != quantity 2 (${q2})`);
  let p = 15;
  let imei: string | null = null;
  let timestamp: number | null = null;
  if (codec === CODEC_13) {
    if (size < 4) throw new ProtocolError('BAD_COMMAND', 11, `Codec 13 size ${size} leaves no room for the timestamp`);
    const seconds = frame.readUInt32BE(15);
    timestamp = seconds * 1000;
    p = 19;
    // Devices send 4-byte seconds; the wiki-style example carries 8-byte milliseconds instead.
    if (seconds < Y2000_S && size >= 8) {
      const ms = frame.readUInt32BE(15) * 4294967296 + frame.readUInt32BE(19);
      if (ms >= Y2000_S * 1000 && ms < Y2100_MS) {
        timestamp = ms;
        p = 23;
      }
    }
  } else if (codec === CODEC_14) {
    if (size < 8) throw new ProtocolError('BAD_COMMAND', 11, `Codec 14 size ${size} leaves no room for the IMEI`);
    imei = unpackImei(frame, 15);
    p = 23;
  } else if (codec === CODEC_15) {
    if (size < 12)
      throw new ProtocolError('BAD_COMMAND', 11, `Codec 15 size ${size} leaves no room for timestamp and IMEI`);
    timestamp = frame.readUInt32BE(15) * 1000;
    imei = unpackImei(frame, 19);
    p = 27;
  }
  return { codec, type, payload: frame.subarray(p, q2At), imei, timestamp };
}

/** True when the bytes read as text (printable ASCII/UTF-8 plus tab, CR, LF). */
export function isTextPayload(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
    if (c === 0x7f) return false;
  }
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes).indexOf('\ufffd') < 0;
}

/**
 * The reply text of a Codec 12/13/14 response, as the command service stores it: UTF-8 decoded,
 * trailing CR/LF/NUL removed. Binary payloads (see isTextPayload) should be kept as hex instead.
 */
export function commandReplyText(cmd: Pick<CommandFrame, 'payload'>): string {
  return Buffer.from(cmd.payload.buffer, cmd.payload.byteOffset, cmd.payload.length)
    .toString('utf8')
    .replace(/[\r\n\0]+$/, '');
}
