/**
 * positions.id is derived from (device, fix_time, event_io_id) by position_id() in the database
 * (directus/sql/positions-partitions.sql) and is the partition key. The daemon's writer computes it
 * in its INSERT; a position created through Directus gets it the same way (positions-hook), and an
 * edit may not change the fields it comes from — the row would keep an id that no longer says
 * its time, and a resend of the new key would not be recognised as one.
 */
export const POSITION_KEY_FIELDS = ['device', 'fix_time', 'event_io_id'] as const;

export type PositionKey = { device: number | string; fixTime: string; eventIoId: number };

/** The key fields of a create payload, or the reason they are unusable. */
export function positionKeyOf(payload: Record<string, unknown>): PositionKey | { error: string } {
  const raw = payload.device;
  const device = typeof raw === 'object' && raw !== null ? (raw as { id?: unknown }).id : raw;
  if (!(typeof device === 'number' || (typeof device === 'string' && /^\d+$/.test(device)))) {
    return { error: 'a position needs the id of an existing device' };
  }
  const fixTime = payload.fix_time;
  if (typeof fixTime !== 'string' || Number.isNaN(Date.parse(fixTime))) {
    return { error: 'a position needs a fix_time (an ISO 8601 time)' };
  }
  const eventIoId = payload.event_io_id ?? 0;
  if (!(typeof eventIoId === 'number' && Number.isInteger(eventIoId) && eventIoId >= 0 && eventIoId <= 65535)) {
    return { error: 'event_io_id is an IO id from 0 to 65535' };
  }
  return { device, fixTime, eventIoId };
}

/** Why an update may not be applied (it touches a key field), or null. */
export function positionUpdateRefusal(payload: Record<string, unknown>): string | null {
  const touched = POSITION_KEY_FIELDS.filter((f) => f in payload);
  if (touched.length === 0) return null;
  return `${touched.join(', ')} of a position make up its id (and the month it is stored in) and cannot change; delete it and create it again`;
}
