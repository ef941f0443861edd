/**
 * positions.id as position_id(device, fix_us, event_io_id) in directus/sql/positions-partitions.sql
 * computes it, written straight into a buffer as the uuid's 16 bytes: the direct COPY
 * (writer.ts) sends the key itself instead of asking PostgreSQL to evaluate the function per row.
 * The SQL function stays the one definition of the key; position-id.test.ts checks this copy
 * against it on PostgreSQL over the whole input range, truncating edge cases included.
 *
 * The SQL builds 32 hex digits: lpad(to_hex(fix_us / 1000), 12) · '7' · lpad(to_hex(fix_us % 1000), 3)
 * · '8' · lpad(to_hex(device), 8) · lpad(to_hex(event_io_id), 7). to_hex of a negative number is
 * its two's complement, and lpad cuts a longer text to its first (leftmost) digits; the fix time
 * here is in milliseconds, so fix_us % 1000 is always 0.
 */

const TWO_32 = 2 ** 32;
const TWO_48 = 2 ** 48;

/** to_hex(n) for a 64-bit integer n, cut or padded by lpad to `digits` hex digits, as a BigInt. */
function lpadHex64(n: bigint, digits: number): bigint {
  const u = BigInt.asUintN(64, n);
  const len = Math.max(1, u.toString(16).length);
  return len > digits ? u >> BigInt(4 * (len - digits)) : u;
}

/**
 * Writes the 16 bytes of position_id(device, fixMs × 1000, eventIoId) at `off`. `device` and
 * `eventIoId` are int4 values, `fixMs` an integer whose microseconds fit an int8.
 */
export function writePositionId(buf: Buffer, off: number, device: number, fixMs: number, eventIoId: number): void {
  // 48 bits of milliseconds (to_hex of a value in [0, 2^48) needs no cutting).
  if (fixMs >= 0 && fixMs < TWO_48) {
    const hi = Math.floor(fixMs / TWO_32);
    buf.writeUInt16BE(hi, off);
    buf.writeUInt32BE(fixMs - hi * TWO_32, off + 2);
  } else {
    const ms = lpadHex64(BigInt(fixMs), 12);
    buf.writeUInt16BE(Number(ms >> 32n), off);
    buf.writeUInt32BE(Number(ms & 0xffffffffn), off + 2);
  }
  // '7', then the microseconds within the millisecond: 000.
  buf.writeUInt16BE(0x7000, off + 6);
  const dev = device >>> 0;
  // to_hex of an int4: at most 8 digits, so lpad(…, 7) cuts only values of 2^28 and more.
  const u = eventIoId >>> 0;
  const ev = u >= 0x10000000 ? u >>> 4 : u;
  // Digits 16–31: '8', device (8 digits), event (7 digits), as 4 + 32 + 28 bits.
  buf.writeUInt32BE(((0x8 << 28) | (dev >>> 4)) >>> 0, off + 8);
  buf.writeUInt32BE((((dev & 0xf) << 28) | ev) >>> 0, off + 12);
}

/** The uuid text of writePositionId's bytes (tests, diagnostics). */
export function positionId(device: number, fixMs: number, eventIoId: number): string {
  const b = Buffer.alloc(16);
  writePositionId(b, 0, device, fixMs, eventIoId);
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
