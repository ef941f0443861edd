/**
 * A login that replaces a live connection of the same IMEI from another address is recorded as an
 * `events` row (type `session_takeover`), next to the derived events an admin already reads, so
 * the takeover is visible in Directus and not only in the logs and metrics.
 */
import type { Knex } from 'knex';
import { SESSION_TAKEOVER_EVENT, type SessionTakeoverAttributes } from '../contract/index.js';

export interface TakeoverRecord extends SessionTakeoverAttributes {
  deviceId: string | number;
  /** Epoch ms of the login that took over. */
  at: number;
  /** The new connection's `address:port`: two takeovers in one millisecond stay two rows. */
  remote: string;
}

export type TakeoverRecorder = (t: TakeoverRecord) => Promise<void>;

/**
 * Writes the event with the device's last known location. A resent record (same device, time and
 * connection) adds nothing; a device deleted meanwhile adds nothing either.
 */
export function knexTakeoverRecorder(knex: Knex): TakeoverRecorder {
  return async (t) => {
    const attributes: SessionTakeoverAttributes = {
      old_address: t.old_address,
      new_address: t.new_address,
      old_instance: t.old_instance,
      new_instance: t.new_instance,
    };
    await knex.raw(
      `INSERT INTO events (device, type, time, key, location, attributes)
       SELECT d.id, ?, to_timestamp(?::double precision / 1000), ?, d.last_location, ?::json
         FROM devices d WHERE d.id = ?
       ON CONFLICT (device, type, time, key) DO NOTHING`,
      [SESSION_TAKEOVER_EVENT, t.at, t.remote.slice(0, 64), JSON.stringify(attributes), t.deviceId],
    );
  };
}
