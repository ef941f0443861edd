/**
 * Rows → PostgreSQL's binary COPY format for the writer's staging table. Numbers go over as their
 * machine form: text COPY spent most of the processor's per-row time formatting them (and
 * PostgreSQL parsing them back), and the JSON columns are copied byte for byte, with no escaping.
 *
 * Format (PostgreSQL docs, "COPY … Binary Format"): a signature and two int32 header fields, then
 * per row an int16 field count and per field an int32 byte length (-1 for NULL) and the bytes in
 * the type's send/recv form (big-endian integers and IEEE doubles), then an int16 -1.
 */
import { writePositionId } from './position-id.js';
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
  return encodeRows(
    rows,
    deviceOf,
    // 16 bytes for a numeric or uuid id, 3 UTF-8 bytes per UTF-16 unit of a text one.
    (id) => ROW_FIXED + 16 + (typeof id === 'string' ? 3 * id.length : 0),
    (buf, off, r, id, flags) => {
      off = encodeId(buf, off, id);
      off = int64(buf, off, r.fixTime, 'fix time');
      off = int64(buf, off, r.receivedAt, 'receive time');
      off = float8(buf, off, r.longitude);
      off = float8(buf, off, r.latitude);
      return lastFields(buf, off, r, flags);
    },
  );
}

/** The fields both layouts end with: altitude, heading, speed, satellites, priority, event_io_id, io, attributes, flags. */
function lastFields(buf: Buffer, off: number, r: PositionRow, flags: string | null): number {
  off = int32(buf, off, r.altitude, 'altitude');
  off = int32(buf, off, r.heading, 'heading');
  off = int32(buf, off, r.speed, 'speed');
  off = int32(buf, off, r.satellites, 'satellites');
  off = int32(buf, off, r.priority, 'priority');
  off = int32(buf, off, r.eventIoId, 'event IO id');
  off = text(buf, off, r.io);
  off = text(buf, off, r.attributes);
  return text(buf, off, flags);
}

/**
 * The COPY stream of `rows`: header, per row the field count and what `writeRow` writes (its
 * fixed-width part at most `fixedBytes(id)` bytes, plus the io, attributes and flags texts), trailer.
 */
function encodeRows<Id>(
  rows: readonly PositionRow[],
  deviceOf: (row: PositionRow) => Id,
  fixedBytes: (id: Id) => number,
  writeRow: (buf: Buffer, off: number, row: PositionRow, id: Id, flags: string | null) => number,
): Buffer {
  const n = rows.length;
  const deviceIds: Id[] = new Array(n);
  const flagTexts: (string | null)[] = new Array(n);
  // Worst case for the texts: 3 UTF-8 bytes per UTF-16 unit.
  let size = SIGNATURE.length + 8 + 2;
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    const id = deviceOf(r);
    const flags = r.flags.length > 0 ? JSON.stringify(r.flags) : null;
    deviceIds[i] = id;
    flagTexts[i] = flags;
    size += fixedBytes(id) + 3 * (r.io.length + r.attributes.length + (flags?.length ?? 0));
  }
  const buf = Buffer.allocUnsafe(size);
  let off = SIGNATURE.copy(buf, 0);
  buf.writeInt32BE(0, off); // flags: no OIDs
  buf.writeInt32BE(0, off + 4); // no header extension
  off += 8;
  for (let i = 0; i < n; i++) {
    buf.writeInt16BE(FIELDS, off);
    off = writeRow(buf, off + 2, rows[i]!, deviceIds[i]!, flagTexts[i] ?? null);
  }
  buf.writeInt16BE(-1, off);
  return buf.subarray(0, off + 2);
}

/** positions' columns in the order copyPositions writes them (the key after its device and time). */
export const POSITION_COLUMNS =
  'device, fix_time, id, received_at, location, altitude, heading, speed, satellites, priority, event_io_id, io, attributes, flags';
/** A point with SRID as EWKB: byte order, type, SRID, x, y. */
const EWKB_POINT = 1 + 4 + 4 + 8 + 8;
/** int16 field count + per field an int32 length, plus 7 × int4, 2 × timestamptz, uuid, EWKB point. */
const POSITION_FIXED = 2 + FIELDS * 4 + 7 * 4 + 2 * 8 + 16 + EWKB_POINT;
/** PostgreSQL's timestamp epoch (2000-01-01) in Unix ms. */
const PG_EPOCH_MS = Date.UTC(2000, 0, 1);

/**
 * Epoch ms as a timestamptz's binary form: int8 microseconds since 2000-01-01, built from 32-bit
 * halves (the microseconds of a far fix time exceed 2^53, so a double would round them).
 */
function timestamptz(buf: Buffer, off: number, ms: number, column: string): number {
  if (!Number.isSafeInteger(ms)) throw new OutOfRangeError(`${column} ${ms}: timestamp out of range`);
  const d = ms - PG_EPOCH_MS;
  const dh = Math.floor(d / TWO_32);
  const low = (d - dh * TWO_32) * 1000; // < 2^42: exact
  const carry = Math.floor(low / TWO_32);
  buf.writeInt32BE(8, off);
  buf.writeInt32BE(dh * 1000 + carry, off + 4);
  buf.writeUInt32BE(low - carry * TWO_32, off + 8);
  return off + 12;
}

/** A point with SRID 4326 as little-endian EWKB, which PostGIS's geometry_recv reads. */
function ewkbPoint(buf: Buffer, off: number, lon: number, lat: number): number {
  buf.writeInt32BE(EWKB_POINT, off);
  buf.writeUInt8(1, off + 4); // little-endian
  buf.writeUInt32LE(0x20000001, off + 5); // point, SRID present
  buf.writeUInt32LE(4326, off + 9);
  buf.writeDoubleLE(lon, off + 13);
  buf.writeDoubleLE(lat, off + 21);
  return off + 4 + EWKB_POINT;
}

/**
 * The rows in binary COPY format in positions' own column types (POSITION_COLUMNS), key included
 * (position-id.ts), so a COPY straight into positions evaluates nothing per row. `deviceOf`
 * gives a row's devices.id, an int4 (position_id's device argument).
 */
export function copyPositions(rows: readonly PositionRow[], deviceOf: (row: PositionRow) => number): Buffer {
  return encodeRows(
    rows,
    deviceOf,
    () => POSITION_FIXED,
    (buf, off, r, device, flags) => {
      off = int32(buf, off, device, 'device');
      off = timestamptz(buf, off, r.fixTime, 'fix time');
      // The event IO id is range-checked a few fields on; a row that fails it is never sent.
      buf.writeInt32BE(16, off);
      writePositionId(buf, off + 4, device, r.fixTime, r.eventIoId);
      off = timestamptz(buf, off + 20, r.receivedAt, 'receive time');
      off = ewkbPoint(buf, off, r.longitude, r.latitude);
      return lastFields(buf, off, r, flags);
    },
  );
}
