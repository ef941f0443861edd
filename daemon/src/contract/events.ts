/**
 * `events` rows that are recorded as they happen rather than derived from positions. The history
 * worker replaces the derived events of a window on every re-derivation; it leaves these alone.
 */

/** A login replaced a live connection of the same IMEI from another address (see ingestion). */
export const SESSION_TAKEOVER_EVENT = 'session_takeover';

/** Event types history derivation never deletes or replaces. */
export const RECORDED_EVENT_TYPES: readonly string[] = [SESSION_TAKEOVER_EVENT];

/** `events.attributes` of a takeover (addresses without ports; null when not known). */
export interface SessionTakeoverAttributes {
  old_address: string | null;
  new_address: string;
  /** Ingestion instances that held the old and hold the new connection. */
  old_instance: string;
  new_instance: string;
}
