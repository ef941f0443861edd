/**
 * Who may connect: an IMEI must name an enabled row in `devices`. Lookups are cached (answers,
 * including "unknown", for a short TTL) and concurrent lookups of one IMEI share one query, so a
 * reconnect storm costs one query per device per TTL, and a device disabled in Directus is
 * refused within one TTL.
 */
import { BlockList, isIP } from 'node:net';
import type { Knex } from 'knex';

export type DeviceStatus =
  | { known: false }
  | {
      known: true;
      id: string | number;
      enabled: boolean;
      /** Created just now (UNKNOWN_DEVICES=register). */
      registered?: boolean;
      /** Source networks the device may connect from (`devices.allowed_networks`); null = any. */
      networks?: AllowedNetworks | null;
    };

export type KnownDevice = Extract<DeviceStatus, { known: true }>;

/** A parsed `allowed_networks` list. Entries that are not CIDR blocks or addresses are kept in `invalid`. */
export interface AllowedNetworks {
  readonly list: BlockList;
  readonly entries: readonly string[];
  readonly invalid: readonly string[];
}

/**
 * Reads `devices.allowed_networks` (Directus stores a CSV string; an array is accepted too).
 * Empty → null (any network).
 */
export function parseAllowedNetworks(value: unknown): AllowedNetworks | null {
  const raw = Array.isArray(value) ? value.map(String) : typeof value === 'string' ? value.split(',') : [];
  const entries = raw.map((s) => s.trim()).filter((s) => s.length > 0);
  if (entries.length === 0) return null;
  const list = new BlockList();
  const invalid: string[] = [];
  for (const entry of entries) {
    const [address = '', bits, extra] = entry.split('/');
    const family = isIP(address);
    const max = family === 6 ? 128 : 32;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : Number.NaN;
    if (family === 0 || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
      invalid.push(entry);
      continue;
    }
    list.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  return { list, entries, invalid };
}

/** Whether `address` (as a socket reports it, maybe `::ffff:a.b.c.d`) lies in one of the networks. */
export function networkAllows(networks: AllowedNetworks, address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const v4 = mapped ?? (isIP(address) === 4 ? address : null);
  if (v4 !== null) return networks.list.check(v4, 'ipv4');
  return isIP(address) === 6 && networks.list.check(address, 'ipv6');
}

export type AdmissionRefusal = 'unknown_device' | 'disabled_device' | 'network_not_allowed';

/**
 * The handshake decision for a device seen from `address`. A list with an entry that is not a
 * network refuses everything (fail closed): a typo must not open the device to the world.
 */
export function admitDevice(
  status: DeviceStatus,
  address: string,
): { admitted: true; device: KnownDevice } | { admitted: false; reason: AdmissionRefusal } {
  if (!status.known) return { admitted: false, reason: 'unknown_device' };
  if (!status.enabled) return { admitted: false, reason: 'disabled_device' };
  const networks = status.networks ?? null;
  if (networks !== null && (networks.invalid.length > 0 || !networkAllows(networks, address))) {
    return { admitted: false, reason: 'network_not_allowed' };
  }
  return { admitted: true, device: status };
}

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
    const row = await knex(table).select('id', 'enabled', 'allowed_networks').where({ imei }).first();
    if (row) {
      return {
        known: true,
        id: row.id,
        enabled: row.enabled === true,
        networks: parseAllowedNetworks(row.allowed_networks),
      };
    }
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
