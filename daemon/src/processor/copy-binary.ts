/**
 * Rows → PostgreSQL's binary COPY format for the writer's staging table. Numbers go over as their
 * machine form: text COPY spent most of the processor's per-row time formatting them (and
 * PostgreSQL parsing them back), and the JSON columns are copied byte for byte, with no escaping.
 *
 * Format (PostgreSQL docs, "COPY … Binary Format"): a signature and two int32 header fields, then
 * per row an int16 field count and per field an int32 byte length (-1 for NULL) and the bytes in
 * the type's send/recv form (big-endian integers and IEEE doubles), then an int16 -1.
 */
import type { PositionRow } from './rows.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const FIELDS = 14;
/** int16 field count + per field an int32 length, plus the fixed-width values (2 × int8, 2 × float8, 6 × int4). */
const ROW_FIXED = 2 + FIELDS * 4 + 4 * 8 + 6 * 4;
const TWO_32 = 2 ** 32;

/** The SQLSTATE PostgreSQL gives a value out of a column's range, so the batch is refused as data (not retried). */
export class OutOfRangeError extends Error {
  readonly code = '22003';
}

/** Writes one devices.id value at `off`, length prefix included; returns the new offset. */
type IdEncoder = (buf: Buffer, off: number, id: number | string) => number;

function int32(buf: Buffer, off: number, v: number, column: string): number {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7fffffff)
    throw new OutOfRangeError(`${column} ${v}: integer out of range`);
  buf.writeInt32BE(4, off);
  buf.writeInt32BE(v, off + 4);
  return off + 8;
}

/** An epoch-ms number (exact below 2^53) as int8. */
function int64(buf: Buffer, off: number, v: number, column: string): number {
  if (!Number.isSafeInteger(v)) throw new OutOfRangeError(`${column} ${v}: bigint out of range`);
  const hi = Math.floor(v / TWO_32);
  buf.writeInt32BE(8, off);
  buf.writeInt32BE(hi, off + 4);
  buf.writeUInt32BE(v - hi * TWO_32, off + 8);
  return off + 12;
}

function float8(buf: Buffer, off: number, v: number): number {
  buf.writeInt32BE(8, off);
  buf.writeDoubleBE(v, off + 4);
  return off + 12;
}

/** Text as UTF-8 (the connection's client_encoding), or NULL. */
function text(buf: Buffer, off: number, v: string | null): number {
  if (v === null) {
    buf.writeInt32BE(-1, off);
    return off + 4;
  }
  const n = buf.write(v, off + 4, 'utf8');
  buf.writeInt32BE(n, off);
  return off + 4 + n;
}

/** The encoder of a devices.id SQL type (the types writer.ts accepts). */
export function idEncoder(idType: string): IdEncoder {
  switch (idType) {
    case 'integer':
      return (buf, off, id) => int32(buf, off, Number(id), 'device');
    case 'smallint':
      return (buf, off, id) => {
        const v = Number(id);
        if (!Number.isInteger(v) || v < -0x8000 || v > 0x7fff) throw new OutOfRangeError(`device ${id}: out of range`);
        buf.writeInt32BE(2, off);
        buf.writeInt16BE(v, off + 4);
        return off + 6;
      };
    case 'bigint':
      // node-postgres reads int8 as a decimal string; BigInt keeps it exact beyond 2^53.
      return (buf, off, id) => {
        buf.writeInt32BE(8, off);
        buf.writeBigInt64BE(BigInt(id), off + 4);
        return off + 12;
      };
    case 'uuid':
      return (buf, off, id) => {
        const hex = String(id).replaceAll('-', '');
        if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`device id ${id} is not a uuid`);
        buf.writeInt32BE(16, off);
        buf.write(hex, off + 4, 'hex');
        return off + 20;
      };
    case 'text':
    case 'character varying':
      return (buf, off, id) => text(buf, off, String(id));
    default:
      throw new Error(`unsupported devices.id type: ${idType}`);
  }
}

/**
 * The rows in binary COPY format, in the staging table's column order (writer.ts STAGE_COLUMNS:
 * device, fix_ms, recv_ms, lon, lat, altitude, heading, speed, satellites, priority, event_io_id,
 * io, attributes, flags). `deviceOf` gives a row's devices.id.
 */
export function copyBinary(
  rows: readonly PositionRow[],
  deviceOf: (row: PositionRow) => number | string,
  encodeId: IdEncoder,
): Buffer {
  const n = rows.length;
  const deviceIds: (number | string)[] = new Array(n);
  const flagTexts: (string | null)[] = new Array(n);
  // Worst case: 3 UTF-8 bytes per UTF-16 unit of the texts, 16 bytes for a numeric or uuid id.
  let size = SIGNATURE.length + 8 + 2;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    const id = deviceOf(r);
    const flags = r.flags.length > 0 ? JSON.stringify(r.flags) : null;
    deviceIds[i] = id;
    flagTexts[i] = flags;
    size += ROW_FIXED + 16 + 3 * (r.io.length + r.attributes.length + (flags?.length ?? 0));
    if (typeof id === 'string') size += 3 * id.length;
  }
  const buf = Buffer.allocUnsafe(size);
  let off = SIGNATURE.copy(buf, 0);
  buf.writeInt32BE(0, off); // flags: no OIDs
  buf.writeInt32BE(0, off + 4); // no header extension
  off += 8;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    buf.writeInt16BE(FIELDS, off);
    off = encodeId(buf, off + 2, deviceIds[i]!);
    off = int64(buf, off, r.fixTime, 'fix time');
    off = int64(buf, off, r.receivedAt, 'receive time');
    off = float8(buf, off, r.longitude);
    off = float8(buf, off, r.latitude);
    off = int32(buf, off, r.altitude, 'altitude');
    off = int32(buf, off, r.heading, 'heading');
    off = int32(buf, off, r.speed, 'speed');
    off = int32(buf, off, r.satellites, 'satellites');
    off = int32(buf, off, r.priority, 'priority');
    off = int32(buf, off, r.eventIoId, 'event IO id');
    off = text(buf, off, r.io);
    off = text(buf, off, r.attributes);
    off = text(buf, off, flagTexts[i] ?? null);
  }
  buf.writeInt16BE(-1, off);
  return buf.subarray(0, off + 2);
}
