import { DEFAULT_POPUP_ATTRIBUTES } from '@fleet/daemon/contract/attributes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/index.js';
import {
  fleetFingerprint,
  latestPositionsGeoJson,
  PositionsQueryError,
  parseAttributeList,
  parsePositionsQuery,
  positionsEtag,
} from './positions.js';

let testDb: TestDatabase;
const hourAgo = new Date(Date.now() - 3600_000);

beforeAll(async () => {
  testDb = await createTestDatabase();
  const db = testDb.knex;
  await db.raw(
    `INSERT INTO devices (imei, name, online, last_speed, last_heading, last_seen_at, last_fix_at, last_location, last_attributes) VALUES
     ('356307042441111', 'Truck A', true, 42, 90, ?, ?, ST_SetSRID(ST_MakePoint(10.5, 50.25), 4326), '{"ignition": true, "externalVoltage": 12.6, "secret": 1}'),
     ('356307042442222', 'Van B', true, 0, 0, ?, ?, ST_SetSRID(ST_MakePoint(-3.7, 40.4), 4326), '{"ignition": false}'),
     ('356307042443333', NULL, false, 60, 180, ?, ?, ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326), NULL),
     ('356307042444444', 'Never fixed', true, NULL, NULL, ?, NULL, NULL, NULL)`,
    [hourAgo, hourAgo, hourAgo, hourAgo, hourAgo, hourAgo, hourAgo],
  );
});
afterAll(async () => testDb?.drop());

describe('latestPositionsGeoJson', () => {
  it('returns one feature per located device with status, position and only the requested attributes', async () => {
    const fc = JSON.parse(await latestPositionsGeoJson(testDb.knex, { attributes: ['ignition', 'externalVoltage'] }));
    expect(fc.type).toBe('FeatureCollection');
    const byImei = Object.fromEntries(fc.features.map((f: any) => [f.properties.imei, f]));
    expect(Object.keys(byImei).sort()).toEqual(['356307042441111', '356307042442222', '356307042443333']);
    expect(byImei['356307042441111'].geometry).toEqual({ type: 'Point', coordinates: [10.5, 50.25] });
    expect(byImei['356307042441111'].properties).toMatchObject({
      name: 'Truck A',
      status: 'moving',
      speed: 42,
      heading: 90,
      attrs: { ignition: true, externalVoltage: 12.6 },
    });
    expect(byImei['356307042441111'].properties.attrs).not.toHaveProperty('secret');
    expect(byImei['356307042441111'].properties.fix).toBe(Math.floor(hourAgo.getTime()));
    expect(byImei['356307042442222'].properties.status).toBe('online');
    // offline wins over speed; a device without a name shows its IMEI
    expect(byImei['356307042443333'].properties).toMatchObject({
      status: 'offline',
      name: '356307042443333',
      attrs: {},
    });
    expect(byImei['356307042441111'].id).toBe(byImei['356307042441111'].properties.id);
  });

  it('honours the moving threshold', async () => {
    const fc = JSON.parse(await latestPositionsGeoJson(testDb.knex, { movingSpeedKmh: 50 }));
    const a = fc.features.find((f: any) => f.properties.imei === '356307042441111');
    expect(a.properties.status).toBe('online');
  });

  it('returns only devices seen after the cursor (minus the overlap) for a delta poll', async () => {
    const before = await fleetFingerprint(testDb.knex);
    expect(before.cursorMs).toBe(hourAgo.getTime());
    await testDb.knex.raw(
      `UPDATE devices SET last_seen_at = now(), last_location = ST_SetSRID(ST_MakePoint(11, 51), 4326) WHERE imei = '356307042442222'`,
    );
    const fc = JSON.parse(await latestPositionsGeoJson(testDb.knex, { sinceMs: before.cursorMs + 60_000 }));
    expect(fc.features.map((f: any) => f.properties.imei)).toEqual(['356307042442222']);
    expect(fc.features[0].geometry.coordinates).toEqual([11, 51]);
    const after = await fleetFingerprint(testDb.knex);
    expect(after.cursorMs).toBeGreaterThan(before.cursorMs);
  });
});

describe('fleetFingerprint / positionsEtag', () => {
  it('stays the same while nothing changes and changes on an online flip, a rename or a new device', async () => {
    const opts = { attributes: DEFAULT_POPUP_ATTRIBUTES };
    const e1 = positionsEtag(await fleetFingerprint(testDb.knex), opts);
    expect(positionsEtag(await fleetFingerprint(testDb.knex), opts)).toBe(e1);

    await testDb.knex.raw(`UPDATE devices SET online = NOT online WHERE imei = '356307042441111'`);
    const e2 = positionsEtag(await fleetFingerprint(testDb.knex), opts);
    expect(e2).not.toBe(e1);

    await testDb.knex.raw(`UPDATE devices SET name = 'Truck A2' WHERE imei = '356307042441111'`);
    const e3 = positionsEtag(await fleetFingerprint(testDb.knex), opts);
    expect(e3).not.toBe(e2);

    await testDb.knex.raw(`INSERT INTO devices (imei) VALUES ('356307042445555')`);
    const e4 = positionsEtag(await fleetFingerprint(testDb.knex), opts);
    expect(e4).not.toBe(e3);
    // the options that shape the body are part of the tag
    expect(positionsEtag(await fleetFingerprint(testDb.knex), { attributes: ['ignition'] })).not.toBe(e4);
  });
});

describe('parseAttributeList', () => {
  it('defaults, de-duplicates and rejects names that are not plain identifiers', () => {
    expect(parseAttributeList(undefined)).toEqual(DEFAULT_POPUP_ATTRIBUTES);
    expect(parseAttributeList('a, b,a')).toEqual(['a', 'b']);
    expect(() => parseAttributeList("x'); drop table devices; --")).toThrow(PositionsQueryError);
    expect(() => parseAttributeList(Array.from({ length: 13 }, (_, i) => `a${i}`).join(','))).toThrow(
      PositionsQueryError,
    );
  });
});

describe('parsePositionsQuery', () => {
  it('reads defaults, decimals and cursors', () => {
    expect(parsePositionsQuery({})).toMatchObject({ movingSpeedKmh: 5 });
    expect(parsePositionsQuery({ moving: '1.5', since: '1700000000000' })).toMatchObject({
      movingSpeedKmh: 1.5,
      sinceMs: 1_700_000_000_000,
    });
  });
  it.each([
    [{ since: '1e300' }, /since must be a cursor/],
    [{ since: '99999999999999999' }, /since must be a cursor/],
    [{ since: '-1' }, /since must be a cursor/],
    [{ since: ['1', '2'] }, /since must be a cursor/],
    [{ moving: 'fast' }, /moving must be a speed/],
    [{ moving: 'Infinity' }, /moving must be a speed/],
    [{ moving: '-1' }, /moving must be a speed/],
  ])('refuses %j with a message', (q, message) => {
    expect(() => parsePositionsQuery(q)).toThrow(PositionsQueryError);
    expect(() => parsePositionsQuery(q)).toThrow(message);
  });
});
