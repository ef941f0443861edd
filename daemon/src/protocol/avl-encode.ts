import { crc16ibm } from './crc.js';
import { IO_DICTIONARY } from './io-dictionary.js';
import { type AvlRecord, CODEC_8, CODEC_8E, CODEC_16, type IoList, type IoValue } from './types.js';

/**
 * IO list for encoding. `widths[i]` (1, 2, 4, 8, 16 or 0 = variable/NX) pins the group of element i;
 * without it a number goes to the dictionary's width when it fits, else the smallest group that fits.
 */
export interface EncodableIoList extends IoList {
  widths?: number[];
}

export type EncodableRecord = Omit<AvlRecord, 'io' | 'generationType'> & {
  generationType?: number | null;
  io: EncodableIoList;
};

const GROUP_WIDTHS = [1, 2, 4, 8, 16, 0] as const;

function fits(v: number, width: number): boolean {
  if (width >= 8) return true;
  const max = 2 ** (8 * width);
  return v >= -(max / 2) && v < max;
}

function widthOf(id: number, v: IoValue, pinned: number | undefined, codec: number): number {
  if (pinned !== undefined) return pinned;
  if (typeof v === 'bigint') return 8;
  if (v instanceof Uint8Array) {
    if (codec === CODEC_8E) return 0;
    if (v.length === 16) return 16;
    throw new RangeError(`IO ${id}: byte values need Codec 8E (NX group) or a 16-byte value`);
  }
  if (!Number.isInteger(v)) throw new RangeError(`IO ${id}: value ${v} is not an integer`);
  const dictSize = IO_DICTIONARY.get(id)?.size;
  if (
    dictSize !== undefined &&
    dictSize <= 8 &&
    (dictSize === 1 || dictSize === 2 || dictSize === 4 || dictSize === 8)
  ) {
    if (fits(v, dictSize)) return dictSize;
  }
  for (const w of [1, 2, 4, 8]) if (fits(v, w)) return w;
  return 8;
}

interface Layout {
  /** Per group (in GROUP_WIDTHS order) the element indexes. */
  groups: number[][];
}

function layoutOf(rec: EncodableRecord, codec: number): Layout {
  const groups: number[][] = [[], [], [], [], [], []];
  const { ids, values, widths } = rec.io;
  if (ids.length !== values.length) throw new RangeError('io.ids and io.values differ in length');
  for (let i = 0; i < ids.length; i++) {
    const w = widthOf(ids[i]!, values[i]!, widths?.[i], codec);
    const g = GROUP_WIDTHS.indexOf(w as (typeof GROUP_WIDTHS)[number]);
    if (g < 0) throw new RangeError(`IO ${ids[i]}: width ${w} is not one of 1, 2, 4, 8, 16, 0 (NX)`);
    if (g === 5 && codec !== CODEC_8E) throw new RangeError(`IO ${ids[i]}: variable-length values need Codec 8E`);
    groups[g]!.push(i);
  }
  return { groups };
}

function recordSize(rec: EncodableRecord, codec: number, layout: Layout): number {
  const idBytes = codec === CODEC_8 ? 1 : 2;
  const countBytes = codec === CODEC_8E ? 2 : 1;
  let size = 24 + (codec === CODEC_8 ? 2 : codec === CODEC_8E ? 4 : 4); // header + event/gen/total
  for (let g = 0; g < 4; g++) size += countBytes + layout.groups[g]!.length * (idBytes + GROUP_WIDTHS[g]!);
  if (layout.groups[4]!.length > 0) size += countBytes + layout.groups[4]!.length * (idBytes + 16);
  if (codec === CODEC_8E) {
    size += 2;
    for (const i of layout.groups[5]!) size += 4 + (rec.io.values[i] as Uint8Array).length;
  }
  return size;
}

function writeUint(buf: Buffer, p: number, v: IoValue, width: number): void {
  if (typeof v === 'bigint') {
    if (width !== 8) throw new RangeError(`bigint IO values need the 8-byte group, got width ${width}`);
    buf.writeBigUInt64BE(BigInt.asUintN(64, v), p);
    return;
  }
  if (v instanceof Uint8Array) {
    if (v.length !== width) throw new RangeError(`IO value of ${v.length} bytes in the ${width}-byte group`);
    buf.set(v, p);
    return;
  }
  if (width === 8) {
    buf.writeBigUInt64BE(BigInt.asUintN(64, BigInt(v)), p);
    return;
  }
  let x = v < 0 ? v + 2 ** (8 * width) : v;
  for (let k = width - 1; k >= 0; k--) {
    buf[p + k] = x & 0xff;
    x = Math.floor(x / 256);
  }
}

/** Encodes the AVL data field `codec, N1, records, N2` (TCP bytes [8, 8+D), UDP payload). */
export function encodeAvlData(codec: number, records: readonly EncodableRecord[]): Buffer {
  if (codec !== CODEC_8 && codec !== CODEC_8E && codec !== CODEC_16) {
    throw new RangeError(`cannot encode AVL records with codec 0x${codec.toString(16)}`);
  }
  if (records.length > 255) throw new RangeError(`at most 255 records per packet, got ${records.length}`);
  const layouts = records.map((r) => layoutOf(r, codec));
  let size = 3;
  for (let r = 0; r < records.length; r++) size += recordSize(records[r]!, codec, layouts[r]!);
  const buf = Buffer.alloc(size);
  buf[0] = codec;
  buf[1] = records.length;
  let p = 2;
  const idBytes = codec === CODEC_8 ? 1 : 2;
  const countBytes = codec === CODEC_8E ? 2 : 1;
  const writeCount = (n: number) => {
    if (countBytes === 1) {
      if (n > 255) throw new RangeError(`${n} IO elements in one group exceed the 1-byte count`);
      buf[p++] = n;
    } else {
      buf.writeUInt16BE(n, p);
      p += 2;
    }
  };
  const writeId = (id: number) => {
    if (idBytes === 1) {
      if (id > 255 || id < 0) throw new RangeError(`IO id ${id} does not fit Codec 8 (1-byte ids)`);
      buf[p++] = id;
    } else {
      buf.writeUInt16BE(id, p);
      p += 2;
    }
  };
  for (let r = 0; r < records.length; r++) {
    const rec = records[r]!;
    const { ids, values } = rec.io;
    const { groups } = layouts[r]!;
    const ts = rec.timestamp;
    buf.writeUInt32BE(Math.floor(ts / 4294967296), p);
    buf.writeUInt32BE(ts >>> 0, p + 4);
    buf[p + 8] = rec.priority;
    buf.writeInt32BE(Math.round(rec.longitude * 1e7), p + 9);
    buf.writeInt32BE(Math.round(rec.latitude * 1e7), p + 13);
    buf.writeInt16BE(rec.altitude, p + 17);
    buf.writeUInt16BE(rec.angle, p + 19);
    buf[p + 21] = rec.satellites;
    buf.writeUInt16BE(rec.speed, p + 22);
    p += 24;
    const total = ids.length;
    if (codec === CODEC_8) {
      if (total > 255) throw new RangeError(`${total} IO elements exceed Codec 8's 1-byte total`);
      buf[p++] = rec.eventIoId;
      buf[p++] = total;
    } else if (codec === CODEC_16) {
      buf.writeUInt16BE(rec.eventIoId, p);
      buf[p + 2] = rec.generationType ?? 0;
      if (total > 255) throw new RangeError(`${total} IO elements exceed Codec 16's 1-byte total`);
      buf[p + 3] = total;
      p += 4;
    } else {
      buf.writeUInt16BE(rec.eventIoId, p);
      buf.writeUInt16BE(total, p + 2);
      p += 4;
    }
    for (let g = 0; g < 5; g++) {
      const members = groups[g]!;
      if (g === 4 && members.length === 0) continue; // the 16-byte group exists only when used
      const width = GROUP_WIDTHS[g]!;
      writeCount(members.length);
      for (const i of members) {
        writeId(ids[i]!);
        writeUint(buf, p, values[i]!, width);
        p += width;
      }
    }
    if (codec === CODEC_8E) {
      writeCount(groups[5]!.length);
      for (const i of groups[5]!) {
        const v = values[i] as Uint8Array;
        writeId(ids[i]!);
        buf.writeUInt16BE(v.length, p);
        buf.set(v, p + 2);
        p += 2 + v.length;
      }
    }
  }
  buf[p] = records.length;
  return buf;
}

/** A whole TCP AVL frame with a correct CRC, as a device would send it. */
export function encodeAvlFrame(codec: number, records: readonly EncodableRecord[]): Buffer {
  return wrapTcpFrame(encodeAvlData(codec, records));
}

/** Wraps a data field (codec id … count 2) in preamble, length and CRC. */
export function wrapTcpFrame(data: Uint8Array): Buffer {
  const frame = Buffer.alloc(data.length + 12);
  frame.writeUInt32BE(data.length, 4);
  frame.set(data, 8);
  frame.writeUInt32BE(crc16ibm(data), 8 + data.length);
  return frame;
}
