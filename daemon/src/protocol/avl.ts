import { crc16ibm } from './crc.js';
import { ProtocolError } from './errors.js';
import {
  type AvlDecodeOptions,
  type AvlPacket,
  type AvlRecord,
  CODEC_8,
  CODEC_8E,
  CODEC_12,
  CODEC_13,
  CODEC_14,
  CODEC_15,
  CODEC_16,
  CODEC_GH3000,
  type IoList,
  type IoValue,
} from './types.js';

const TWO_32 = 4294967296;
/** 8-byte values whose high word is below this are exact as a double (< 2^53). */
const SAFE_HIGH = 0x200000;

export function isAvlCodec(codec: number): boolean {
  return codec === CODEC_8 || codec === CODEC_8E || codec === CODEC_16;
}

export function codecName(codec: number): string {
  switch (codec) {
    case CODEC_8:
      return 'Codec 8';
    case CODEC_8E:
      return 'Codec 8 Extended';
    case CODEC_16:
      return 'Codec 16';
    case CODEC_12:
      return 'Codec 12';
    case CODEC_13:
      return 'Codec 13';
    case CODEC_14:
      return 'Codec 14';
    case CODEC_15:
      return 'Codec 15';
    case CODEC_GH3000:
      return 'GH3000 codec 7';
    default:
      return `unknown codec 0x${codec.toString(16).padStart(2, '0')}`;
  }
}

function unsupported(codec: number, offset: number): ProtocolError {
  let why: string;
  if (codec === CODEC_GH3000)
    why = 'GH3000 (codec 0x07) records are not supported; configure the device for Codec 8/8E';
  else if (codec >= CODEC_12 && codec <= CODEC_15) why = `${codecName(codec)} is a command frame, not AVL data`;
  else why = `${codecName(codec)} is not an AVL codec (expected 0x08, 0x8e or 0x10)`;
  return new ProtocolError('UNSUPPORTED_CODEC', offset, why);
}

/**
 * False for a record made without a GNSS fix: the device then sends 0 satellites (and repeats the
 * last known position, or 0/0 when it never had one).
 */
export function hasPositionFix(r: Pick<AvlRecord, 'satellites' | 'latitude' | 'longitude'>): boolean {
  return r.satellites !== 0 && !(r.latitude === 0 && r.longitude === 0);
}

/**
 * Validates a TCP envelope (preamble, length, CRC) without looking at the codec.
 * Returns D (the data field length). Shared by AVL and command frames.
 */
export function checkEnvelope(frame: Uint8Array, skipCrc = false): number {
  if (frame.length < 12) {
    throw new ProtocolError('TRUNCATED', frame.length, `a frame is at least 12 bytes (+ data), got ${frame.length}`);
  }
  if (frame[0] !== 0 || frame[1] !== 0 || frame[2] !== 0 || frame[3] !== 0) {
    throw new ProtocolError('BAD_PREAMBLE', 0, 'frame preamble must be 00000000');
  }
  const d = ((frame[4]! << 24) | (frame[5]! << 16) | (frame[6]! << 8) | frame[7]!) >>> 0;
  if (d < 3) throw new ProtocolError('LENGTH_TOO_SMALL', 4, `data field length ${d} < 3 (codec id + 2 counts)`);
  const size = d + 12;
  if (frame.length < size) {
    throw new ProtocolError(
      'TRUNCATED',
      frame.length,
      `data field length ${d} needs a ${size}-byte frame, got ${frame.length} bytes`,
    );
  }
  if (frame.length > size) {
    throw new ProtocolError(
      'TRAILING_BYTES',
      size,
      `data field length ${d} gives a ${size}-byte frame, got ${frame.length} bytes (${frame.length - size} extra)`,
    );
  }
  if (!skipCrc) {
    const end = 8 + d;
    const declared = ((frame[end]! << 24) | (frame[end + 1]! << 16) | (frame[end + 2]! << 8) | frame[end + 3]!) >>> 0;
    const computed = crc16ibm(frame, 8, end);
    if (declared !== computed) {
      throw new ProtocolError(
        'CRC_MISMATCH',
        end,
        `CRC field 0x${declared.toString(16).padStart(8, '0')} != CRC-16/IBM of bytes 8..${end} 0x${computed.toString(16).padStart(4, '0')}`,
      );
    }
  }
  return d;
}

/**
 * The cheap per-frame check ingestion runs before storing raw bytes: preamble, length, CRC,
 * AVL codec and N1 == N2. Records are not decoded.
 */
export function checkAvlFrame(frame: Buffer): { codec: number; records: number } {
  const d = checkEnvelope(frame);
  const codec = frame[8]!;
  if (!isAvlCodec(codec)) throw unsupported(codec, 8);
  const n1 = frame[9]!;
  const n2 = frame[8 + d - 1]!;
  if (d < 4 && n1 !== 0) throw new ProtocolError('TRUNCATED', 10, `${n1} records announced but no record bytes`);
  if (n1 !== n2) {
    throw new ProtocolError('RECORD_COUNT_MISMATCH', 8 + d - 1, `number of data 1 (${n1}) != number of data 2 (${n2})`);
  }
  return { codec, records: n1 };
}

/** Full decode of a TCP AVL frame, CRC included. */
export function decodeAvlFrame(frame: Buffer, opts?: AvlDecodeOptions): AvlPacket {
  const d = checkEnvelope(frame, opts?.skipCrc === true);
  const codec = frame[8]!;
  return { codec, records: decodeAvlData(frame, 8, 8 + d, opts) };
}

/**
 * Decodes the AVL data field `codec id, N1, records…, N2` found in buf[start, end)
 * (the same bytes in TCP frames and UDP datagrams). Every read is bounds-checked against `end`.
 */
export function decodeAvlData(buf: Uint8Array, start: number, end: number, opts?: AvlDecodeOptions): AvlRecord[] {
  if (end - start < 3) throw new ProtocolError('TRUNCATED', end, 'AVL data needs codec id, N1 and N2');
  const codec = buf[start]!;
  if (!isAvlCodec(codec)) throw unsupported(codec, start);
  const n = buf[start + 1]!;
  const nod2At = end - 1;
  const n2 = buf[nod2At]!;
  if (n !== n2)
    throw new ProtocolError('RECORD_COUNT_MISMATCH', nod2At, `number of data 1 (${n}) != number of data 2 (${n2})`);
  const g16 = opts?.ioGroup16 === true;
  const records: AvlRecord[] = new Array(n);
  let p = start + 2;
  for (let r = 0; r < n; r++) {
    if (p + 24 > nod2At) throw truncated(p, r, 'record header');
    const rec = readHeader(buf, p, codec);
    p += 24;
    const ids: number[] = [];
    const values: IoValue[] = [];
    if (codec === CODEC_8) p = readIo8(buf, p, nod2At, r, rec, ids, values, g16);
    else if (codec === CODEC_8E) p = readIo8E(buf, p, nod2At, r, rec, ids, values, g16);
    else p = readIo16(buf, p, nod2At, r, rec, ids, values, g16);
    rec.io = { ids, values };
    records[r] = rec;
  }
  if (p !== nod2At) {
    throw new ProtocolError(
      'TRAILING_BYTES',
      p,
      `${nod2At - p} unparsed bytes between the last record and number of data 2 (wrong codec layout or record count?)`,
    );
  }
  return records;
}

function truncated(p: number, r: number, what: string): ProtocolError {
  return new ProtocolError('TRUNCATED', p, `record ${r}: ${what} runs past number of data 2`);
}

const EMPTY_IO: IoList = { ids: [], values: [] };

function readHeader(b: Uint8Array, p: number, codec: number): AvlRecord {
  const hi = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
  const lo = ((b[p + 4]! << 24) | (b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!) >>> 0;
  return {
    timestamp: hi * TWO_32 + lo,
    priority: b[p + 8]!,
    longitude: ((b[p + 9]! << 24) | (b[p + 10]! << 16) | (b[p + 11]! << 8) | b[p + 12]!) / 1e7,
    latitude: ((b[p + 13]! << 24) | (b[p + 14]! << 16) | (b[p + 15]! << 8) | b[p + 16]!) / 1e7,
    altitude: (((b[p + 17]! << 8) | b[p + 18]!) << 16) >> 16,
    angle: (b[p + 19]! << 8) | b[p + 20]!,
    satellites: b[p + 21]!,
    speed: (b[p + 22]! << 8) | b[p + 23]!,
    eventIoId: 0,
    generationType: codec === CODEC_16 ? 0 : null,
    io: EMPTY_IO,
  };
}

/** Reads one fixed-width group: n × (id of idBytes, value of width). Returns the new offset. */
function readGroup(
  b: Uint8Array,
  p: number,
  end: number,
  n: number,
  idBytes: number,
  width: number,
  ids: number[],
  values: IoValue[],
  r: number,
): number {
  const step = idBytes + width;
  if (p + n * step > end) throw truncated(p, r, `${n} IO elements of ${width} bytes`);
  for (let i = 0; i < n; i++) {
    let id: number;
    if (idBytes === 1) id = b[p++]!;
    else {
      id = (b[p]! << 8) | b[p + 1]!;
      p += 2;
    }
    ids.push(id);
    switch (width) {
      case 1:
        values.push(b[p]!);
        break;
      case 2:
        values.push((b[p]! << 8) | b[p + 1]!);
        break;
      case 4:
        values.push(((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0);
        break;
      case 8: {
        const hi = ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
        const lo = ((b[p + 4]! << 24) | (b[p + 5]! << 16) | (b[p + 6]! << 8) | b[p + 7]!) >>> 0;
        values.push(hi < SAFE_HIGH ? hi * TWO_32 + lo : (BigInt(hi) << 32n) | BigInt(lo));
        break;
      }
      default:
        values.push(new Uint8Array(b.buffer, b.byteOffset + p, width));
    }
    p += width;
  }
  return p;
}

function readIo8(
  b: Uint8Array,
  p: number,
  end: number,
  r: number,
  rec: AvlRecord,
  ids: number[],
  values: IoValue[],
  g16: boolean,
): number {
  if (p + 3 > end) throw truncated(p, r, 'event id / IO counts');
  rec.eventIoId = b[p]!;
  p += 2; // event id, N total (not relied on: the group counts define the layout)
  p = readGroup(b, p + 1, end, b[p]!, 1, 1, ids, values, r);
  if (p >= end) throw truncated(p, r, 'N2 count');
  p = readGroup(b, p + 1, end, b[p]!, 1, 2, ids, values, r);
  if (p >= end) throw truncated(p, r, 'N4 count');
  p = readGroup(b, p + 1, end, b[p]!, 1, 4, ids, values, r);
  if (p >= end) throw truncated(p, r, 'N8 count');
  p = readGroup(b, p + 1, end, b[p]!, 1, 8, ids, values, r);
  if (g16) {
    if (p >= end) throw truncated(p, r, 'N16 count');
    p = readGroup(b, p + 1, end, b[p]!, 1, 16, ids, values, r);
  }
  return p;
}

function readIo16(
  b: Uint8Array,
  p: number,
  end: number,
  r: number,
  rec: AvlRecord,
  ids: number[],
  values: IoValue[],
  g16: boolean,
): number {
  if (p + 5 > end) throw truncated(p, r, 'event id / generation type / IO counts');
  rec.eventIoId = (b[p]! << 8) | b[p + 1]!;
  rec.generationType = b[p + 2]!;
  p += 4; // event id (2), generation type (1), N total (1)
  p = readGroup(b, p + 1, end, b[p]!, 2, 1, ids, values, r);
  if (p >= end) throw truncated(p, r, 'N2 count');
  p = readGroup(b, p + 1, end, b[p]!, 2, 2, ids, values, r);
  if (p >= end) throw truncated(p, r, 'N4 count');
  p = readGroup(b, p + 1, end, b[p]!, 2, 4, ids, values, r);
  if (p >= end) throw truncated(p, r, 'N8 count');
  p = readGroup(b, p + 1, end, b[p]!, 2, 8, ids, values, r);
  if (g16) {
    if (p >= end) throw truncated(p, r, 'N16 count');
    p = readGroup(b, p + 1, end, b[p]!, 2, 16, ids, values, r);
  }
  return p;
}

function readIo8E(
  b: Uint8Array,
  p: number,
  end: number,
  r: number,
  rec: AvlRecord,
  ids: number[],
  values: IoValue[],
  g16: boolean,
): number {
  if (p + 6 > end) throw truncated(p, r, 'event id / IO counts');
  rec.eventIoId = (b[p]! << 8) | b[p + 1]!;
  p += 4; // event id (2), N total (2)
  p = readGroup(b, p + 2, end, (b[p]! << 8) | b[p + 1]!, 2, 1, ids, values, r);
  if (p + 2 > end) throw truncated(p, r, 'N2 count');
  p = readGroup(b, p + 2, end, (b[p]! << 8) | b[p + 1]!, 2, 2, ids, values, r);
  if (p + 2 > end) throw truncated(p, r, 'N4 count');
  p = readGroup(b, p + 2, end, (b[p]! << 8) | b[p + 1]!, 2, 4, ids, values, r);
  if (p + 2 > end) throw truncated(p, r, 'N8 count');
  p = readGroup(b, p + 2, end, (b[p]! << 8) | b[p + 1]!, 2, 8, ids, values, r);
  if (g16) {
    if (p + 2 > end) throw truncated(p, r, 'N16 count');
    p = readGroup(b, p + 2, end, (b[p]! << 8) | b[p + 1]!, 2, 16, ids, values, r);
  }
  if (p + 2 > end) throw truncated(p, r, 'NX count');
  const nx = (b[p]! << 8) | b[p + 1]!;
  p += 2;
  for (let i = 0; i < nx; i++) {
    if (p + 4 > end) throw truncated(p, r, 'NX element header');
    const id = (b[p]! << 8) | b[p + 1]!;
    const len = (b[p + 2]! << 8) | b[p + 3]!;
    p += 4;
    if (p + len > end) throw truncated(p, r, `NX element ${id} of ${len} bytes`);
    ids.push(id);
    // A view, not a copy (copying dominated Codec 8E decoding); frames are never mutated.
    values.push(new Uint8Array(b.buffer, b.byteOffset + p, len));
    p += len;
  }
  return p;
}
