/**
 * Who may connect: an IMEI must name an enabled row in `devices`. Lookups are cached (answers,
 * including "unknown", for a short TTL) and concurrent lookups of one IMEI share one query, so a
 * reconnect storm costs one query per device per TTL, and a device disabled in Directus is
 * refused within one TTL.
 */
import type { Knex } from 'knex';

export type DeviceStatus =
  | { known: false }
  | {
      known: true;
      id: string | number;
      enabled: boolean /** Created just now (UNKNOWN_DEVICES=register). */;
      registered?: boolean;
    };

/** The one question ingestion asks the database. */
export type DeviceLookup = (imei: string) => Promise<DeviceStatus>;

export interface KnexLookupOptions {
  /** `register`: an unknown IMEI is inserted disabled (an admin enables it in Directus). */
  unknownDevices: 'refuse' | 'register';
  table?: string;
}

/** Lookup against the Directus `devices` collection. */
export function knexDeviceLookup(knex: Knex, options: KnexLookupOptions): DeviceLookup {
  const table = options.table ?? 'devices';
  return async (imei) => {
    const row = await knex(table).select('id', 'enabled').where({ imei }).first();
    if (row) return { known: true, id: row.id, enabled: row.enabled === true };
    if (options.unknownDevices === 'register') {
      // A concurrent registration (another instance) wins harmlessly: nothing is inserted twice.
      try {
        await knex(table).insert({ imei, name: imei, enabled: false }).onConflict('imei').ignore();
      } catch (err) {
        // An IMEI the column cannot hold (e.g. 17 digits in varchar(15)) stays unknown.
        if ((err as { code?: string }).code === '22001') return { known: false };
        throw err;
      }
      const created = await knex(table).select('id', 'enabled').where({ imei }).first();
      if (created) return { known: true, id: created.id, enabled: created.enabled === true, registered: true };
    }
    return { known: false };
  };
}

export interface CachedLookup extends DeviceLookup {
  /** Forget one IMEI (or everything). */
  invalidate(imei?: string): void;
}

/** Wraps a lookup with a TTL cache and in-flight de-duplication. Failed lookups are not cached. */
export function cachedDeviceLookup(
  lookup: DeviceLookup,
  ttlMs: number,
  now: () => number = Date.now,
  maxEntries = 200_000,
): CachedLookup {
  const cache = new Map<string, { at: number; status: DeviceStatus }>();
  const inFlight = new Map<string, Promise<DeviceStatus>>();
  const cached = ((imei: string) => {
    const hit = cache.get(imei);
    if (hit && now() - hit.at < ttlMs) return Promise.resolve(hit.status);
    const running = inFlight.get(imei);
    if (running) return running;
    const p = lookup(imei).then(
      (status) => {
        inFlight.delete(imei);
        if (ttlMs > 0) {
          // Map keeps insertion order: dropping the oldest bounds memory under an IMEI flood.
          if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
          cache.delete(imei);
          cache.set(imei, { at: now(), status });
        }
        return status;
      },
      (err: unknown) => {
        inFlight.delete(imei);
        throw err;
      },
    );
    inFlight.set(imei, p);
    return p;
  }) as CachedLookup;
  cached.invalidate = (imei?: string) => {
    if (imei === undefined) cache.clear();
    else cache.delete(imei);
  };
  return cached;
}
