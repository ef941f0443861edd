/** Device admission against the real Directus `devices` table, and the lookup cache. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedDeviceLookup, type DeviceStatus, knexDeviceLookup } from '../../src/ingestion/devices.js';
import { type Ingestion, startIngestion } from '../../src/ingestion/server.js';
import { createTestDatabase, createTestRedis, RawDevice, REDIS_URL } from './support.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.knex('devices').insert({ imei: '356307042444001', name: 'known', enabled: true });
});

afterAll(async () => {
  await db?.drop();
});

describe('knexDeviceLookup', () => {
  it('answers known/enabled, known/disabled and unknown from the devices table', async () => {
    await db.knex('devices').insert({ imei: '356307042444002', name: 'off', enabled: false });
    const lookup = knexDeviceLookup(db.knex, { unknownDevices: 'refuse' });
    expect(await lookup('356307042444001')).toMatchObject({ known: true, enabled: true });
    expect(await lookup('356307042444002')).toMatchObject({ known: true, enabled: false });
    expect(await lookup('356307042444999')).toEqual({ known: false });
    expect(await db.knex('devices').where({ imei: '356307042444999' }).first()).toBeUndefined();
  });

  it('UNKNOWN_DEVICES=register creates the device disabled (once, even when asked concurrently)', async () => {
    const lookup = knexDeviceLookup(db.knex, { unknownDevices: 'register' });
    const answers = await Promise.all([lookup('356307042444100'), lookup('356307042444100')]);
    for (const a of answers) expect(a).toMatchObject({ known: true, enabled: false });
    const rows = await db.knex('devices').where({ imei: '356307042444100' });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ enabled: false, name: '356307042444100' });
    // An IMEI the column cannot hold stays unknown instead of failing the handshake path.
    expect(await lookup('12345678901234567')).toEqual({ known: false });
  });

  it('over TCP: a registered unknown device is refused until an admin enables it', async () => {
    const r = await createTestRedis();
    let ing: Ingestion | undefined;
    try {
      ing = await startIngestion({
        instanceId: 'devices-register',
        redisUrl: REDIS_URL,
        redisPrefix: r.prefix,
        lookup: knexDeviceLookup(db.knex, { unknownDevices: 'register' }),
        deviceCacheTtlMs: 0,
        host: '127.0.0.1',
        tcpPort: 0,
        udpPort: null,
        commands: false,
      });
      const first = await RawDevice.connect(ing.tcpPort);
      expect(await first.login('356307042444200')).toBe(0);
      first.close();
      expect(await db.knex('devices').where({ imei: '356307042444200' }).first()).toMatchObject({ enabled: false });
      await db.knex('devices').update({ enabled: true }).where({ imei: '356307042444200' });
      const again = await RawDevice.connect(ing.tcpPort);
      expect(await again.login('356307042444200')).toBe(1);
      again.close();
    } finally {
      await ing?.stop();
      await r.cleanup();
    }
  });
});

describe('cachedDeviceLookup', () => {
  it('answers a burst of lookups with one query and asks again after the TTL', async () => {
    let now = 0;
    let queries = 0;
    const base = async (imei: string): Promise<DeviceStatus> => {
      queries++;
      return (await db.knex('devices').where({ imei }).first())
        ? { known: true, id: 1, enabled: true }
        : { known: false };
    };
    const cached = cachedDeviceLookup(base, 1000, () => now);
    const burst = await Promise.all(Array.from({ length: 50 }, () => cached('356307042444001')));
    expect(burst.every((s) => s.known)).toBe(true);
    expect(queries).toBe(1);
    now = 999;
    await cached('356307042444001');
    expect(queries).toBe(1);
    now = 1000;
    await cached('356307042444001');
    expect(queries).toBe(2);
    // Unknown answers are cached too (a storm of strangers costs one query each per TTL).
    await cached('356307042444998');
    await cached('356307042444998');
    expect(queries).toBe(3);
  });

  it('does not cache failures', async () => {
    let calls = 0;
    const flaky = cachedDeviceLookup(async () => {
      calls++;
      if (calls === 1) throw new Error('db down');
      return { known: false };
    }, 60_000);
    await expect(flaky('1')).rejects.toThrow('db down');
    expect(await flaky('1')).toEqual({ known: false });
  });
});
