/** Shared protocol constants and shapes (re-exported by index.ts, which is the public contract). */

/** AVL codec ids accepted for telemetry. */
export const CODEC_8 = 0x08;
export const CODEC_8E = 0x8e;
export const CODEC_16 = 0x10;
export const CODEC_12 = 0x0c;
export const CODEC_13 = 0x0d;
export const CODEC_14 = 0x0e;
/** Codec 15 (FMX6 "professional" line: timestamp + IMEI). Decoded by decodeCommandFrame. */
export const CODEC_15 = 0x0f;
/** Legacy GH3000 codec: recognised only to be refused with a clear error. */
export const CODEC_GH3000 = 0x07;

/**
 * Raw IO value as it was on the wire: a number for 1/2/4-byte values and 8-byte values up to 2^53,
 * a bigint for larger 8-byte values (never rounded), bytes for variable-length (NX) and 16-byte values.
 */
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
  | 'BAD_COMMAND'
  | 'EXPECTED_LOGIN';

/** What the TCP framer yields, in stream order. */
export type TcpFrame =
  | { kind: 'ping' }
  | { kind: 'imei'; imei: string }
  /** A whole data or command frame (preamble … CRC), codec id at byte 8; CRC not yet checked. */
  | { kind: 'frame'; codec: number; bytes: Buffer };

export interface TcpFramerOptions {
  /** Largest accepted data field length D; larger → LENGTH_EXCEEDED before allocating. */
  maxFrameBytes: number;
  /** Accept only one IMEI login until `loginAccepted()` (a server's view of a new connection). */
  loginFirst?: boolean;
}

/** Options for AVL decoding. */
export interface AvlDecodeOptions {
  /**
   * Read an extra 16-byte IO group after the 8-byte group (Traccar's `protocol.teltonika.extended`).
   * Some 2017-era firmware sent it; it is a per-device setting, never auto-detected.
   */
  ioGroup16?: boolean;
  /** Skip the CRC comparison (diagnostics only: the decode CLI's --ignore-crc). */
  skipCrc?: boolean;
}

/** A decoded Codec 12/13/14/15 frame. */
export interface CommandFrame {
  codec: number;
  /** 0x05 command, 0x06 response / Codec 14 ACK, 0x11 Codec 14 nACK, other values device-specific. */
  type: number;
  /** Payload bytes (without the Codec 13/15 timestamp or the Codec 14/15 IMEI). */
  payload: Buffer;
  /** Codec 14/15: the IMEI carried in the frame, otherwise null. */
  imei: string | null;
  /** Codec 13/15: message time in epoch milliseconds, otherwise null. */
  timestamp: number | null;
}
