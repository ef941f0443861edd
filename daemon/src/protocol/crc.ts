/**
 * CRC-16/IBM (a.k.a. CRC-16/ARC): poly 0x8005 reflected (0xA001), init 0, no final xor.
 * Slice-by-8: eight 256-entry tables let the loop fold 8 input bytes per step, which removes most
 * of the CRC's share of decoding time compared with one table lookup per byte.
 */
const TABLES = buildTables();

function buildTables(): Uint16Array {
  const t = new Uint16Array(8 * 256);
  for (let b = 0; b < 256; b++) {
    let crc = b;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
    t[b] = crc;
  }
  for (let k = 1; k < 8; k++) {
    for (let b = 0; b < 256; b++) {
      const prev = t[(k - 1) * 256 + b]!;
      t[k * 256 + b] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
}

export function crc16ibm(buf: Uint8Array, start = 0, end: number = buf.length): number {
  if (start < 0) start = 0;
  if (end > buf.length) end = buf.length;
  const t = TABLES;
  let crc = 0;
  let i = start;
  const end8 = end - 7;
  while (i < end8) {
    const a = crc ^ (buf[i]! | (buf[i + 1]! << 8));
    crc =
      t[1792 + (a & 0xff)]! ^
      t[1536 + (a >>> 8)]! ^
      t[1280 + buf[i + 2]!]! ^
      t[1024 + buf[i + 3]!]! ^
      t[768 + buf[i + 4]!]! ^
      t[512 + buf[i + 5]!]! ^
      t[256 + buf[i + 6]!]! ^
      t[buf[i + 7]!]!;
    i += 8;
  }
  while (i < end) crc = (crc >>> 8) ^ t[(crc ^ buf[i++]!) & 0xff]!;
  return crc;
}
