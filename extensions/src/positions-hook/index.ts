/**
 * Positions hook: a position created through Directus gets its id the way the daemon's writer
 * gives it (position_id() in the database), and an edit may not change the fields that id is
 * derived from. Registration only; the rules are in ../shared/telematics/position-key.
 */
import { createError } from '@directus/errors';
import { defineHook } from '@directus/extensions-sdk';
import { positionKeyOf, positionUpdateRefusal } from '../shared/telematics/position-key';

const PositionInvalidError = createError<{ reason: string }>('FLEET_POSITION_INVALID', (e) => e.reason, 400);

export default defineHook(({ filter }, { database }) => {
  filter('positions.items.create', async (payload) => {
    const p = payload as Record<string, unknown>;
    const key = positionKeyOf(p);
    if ('error' in key) throw new PositionInvalidError({ reason: key.error });
    const r = await database.raw<{ rows: { id: string }[] }>(
      'SELECT position_id(?::int, ?::timestamptz, ?::int)::text AS id',
      [key.device, key.fixTime, key.eventIoId],
    );
    return { ...p, id: r.rows[0]!.id };
  });
  filter('positions.items.update', (payload) => {
    const why = positionUpdateRefusal(payload as Record<string, unknown>);
    if (why) throw new PositionInvalidError({ reason: why });
    return payload;
  });
});
