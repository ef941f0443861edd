/**
 * The `fleet` endpoint inside a real Directus with the built bundle: access rules (Directus
 * permissions decide), ETag/since behaviour over HTTP, tracks, health from Redis, static files.
 */
import { encodeRegistryValue, redisKeys } from '@fleet/daemon/contract';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  startDirectus,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestDirectus,
} from '../../../test/support/index.js';

const VIEWER_ROLE = '6f1c1c3e-2b7a-4b52-9a55-0e5f6d1a1002';
let db: TestDatabase;
let directus: TestDirectus;
let redis: Redis;
let viewerToken: string;
let nobodyToken: string;
let deviceId: number;

const get = (path: string, token?: string, headers: Record<string, string> = {}) =>
  fetch(`${directus.url}${path}`, { headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });

async function admin(method: string, path: string, body: unknown): Promise<{ data: { id: string } }> {
  const res = await fetch(`${directus.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${directus.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${await res.text()}`);
  return (await res.json()) as { data: { id: string } };
}

beforeAll(async () => {
  db = await createTestDatabase();
  const t = Date.UTC(2026, 10, 20, 8);
  const [row] = (
    await db.knex.raw(
      `INSERT INTO devices (imei, name, online, last_speed, last_seen_at, last_fix_at, last_location)
     VALUES ('356307042441013', 'Van 1', true, 30, now(), now(), ST_SetSRID(ST_MakePoint(13.4, 52.5), 4326)),
            ('356307042441014', 'Van 2', false, 0, now(), now(), ST_SetSRID(ST_MakePoint(2.3, 48.8), 4326))
     RETURNING id`,
    )
  ).rows as { id: number }[];
  deviceId = row!.id;
  await db.knex.raw(
    `INSERT INTO positions (id, device, fix_time, location, speed)
     SELECT position_id(d, ts, 0), d, ts, ST_SetSRID(ST_MakePoint(13.4 + i * 0.001, 52.5), 4326), 40
     FROM generate_series(0, 49) i, LATERAL (SELECT ?::int AS d, to_timestamp(? / 1000.0 + i * 10) AS ts) x`,
    [deviceId, t],
  );
  // A loaded shared machine can take longer than the default 90 s to boot Directus.
  directus = await startDirectus({ database: db, timeoutMs: 300_000 });
  redis = new Redis(TEST_REDIS_URL);

  await admin('POST', '/users', { email: 'viewer@example.com', password: 'viewer-password-1', role: VIEWER_ROLE });
  const nobodyRole = await admin('POST', '/roles', { name: 'Nobody' });
  await admin('POST', '/users', {
    email: 'nobody@example.com',
    password: 'nobody-password-1',
    role: nobodyRole.data.id,
  });
  viewerToken = await directus.login('viewer@example.com', 'viewer-password-1');
  nobodyToken = await directus.login('nobody@example.com', 'nobody-password-1');
});

afterAll(async () => {
  redis?.disconnect();
  await directus?.stop();
  await db?.drop();
});

describe('GET /fleet/positions', () => {
  it('needs a signed-in user who may read devices', async () => {
    expect((await get('/fleet/positions')).status).toBe(403);
    expect((await get('/fleet/positions', nobodyToken)).status).toBe(403);
    expect((await get('/fleet/positions', viewerToken)).status).toBe(200);
  });

  it('returns GeoJSON with an ETag, answers 304 while nothing changed and 200 once something did', async () => {
    const first = await get('/fleet/positions', directus.adminToken);
    expect(first.status).toBe(200);
    const fc = (await first.json()) as { features: { properties: { name: string; status: string } }[] };
    expect(fc.features.map((f) => [f.properties.name, f.properties.status]).sort()).toEqual([
      ['Van 1', 'moving'],
      ['Van 2', 'offline'],
    ]);
    // big enough to be sent gzipped (fetch decompresses transparently)
    const big = await get('/fleet/positions', directus.adminToken, { 'accept-encoding': 'gzip' });
    expect(big.headers.get('content-encoding')).toBeNull(); // two devices: below the threshold
    const countries = await get('/fleet/basemap/countries.geojson', undefined, { 'accept-encoding': 'gzip' });
    expect(countries.headers.get('content-encoding')).toBe('gzip');
    expect(((await countries.json()) as { type: string }).type).toBe('FeatureCollection');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"/);
    expect(Number(first.headers.get('x-fleet-cursor'))).toBeGreaterThan(0);

    const again = await get('/fleet/positions', directus.adminToken, { 'if-none-match': etag });
    expect(again.status).toBe(304);

    await db.knex('devices').where({ id: deviceId }).update({ online: false });
    const changed = await get('/fleet/positions', directus.adminToken, { 'if-none-match': etag });
    expect(changed.status).toBe(200);
  });

  it('rejects bad parameters with 400', async () => {
    expect((await get('/fleet/positions?attributes=a%27b', directus.adminToken)).status).toBe(400);
    expect((await get('/fleet/positions?since=yesterday', directus.adminToken)).status).toBe(400);
  });

  it('answers 400 with a message, never 500, for parameters that used to reach the database', async () => {
    for (const q of ['since=1e300', 'since=99999999999999999', 'moving=Infinity', 'since=1&since=2']) {
      const res = await get(`/fleet/positions?${q}`, viewerToken);
      expect(res.status, q).toBe(400);
      const body = (await res.json()) as { errors: { message: string }[] };
      expect(body.errors[0]?.message, q).toMatch(/since|moving/);
    }
    expect((await get('/fleet/positions?moving=1.5', viewerToken)).status).toBe(200);
  });
});

describe('GET /fleet/devices/:id/track', () => {
  it('returns the track for a reader and refuses others', async () => {
    const from = Date.UTC(2026, 10, 20, 7);
    const to = Date.UTC(2026, 10, 20, 9);
    const path = `/fleet/devices/${deviceId}/track?from=${from}&to=${to}&zoom=14`;
    expect((await get(path)).status).toBe(403);
    expect((await get(path, nobodyToken)).status).toBe(403);
    const res = await get(path, viewerToken);
    expect(res.status).toBe(200);
    const fc = (await res.json()) as {
      features: { geometry: { type: string }; properties: { kind: string } }[];
      meta: { positions: number };
    };
    expect(fc.meta.positions).toBe(50);
    expect(fc.features.map((f) => f.properties.kind).sort()).toEqual(['end', 'start', 'track']);
    expect((await get(`/fleet/devices/${deviceId}/track?from=${to}&to=${from}`, viewerToken)).status).toBe(400);
  });

  it('answers 400 for ids and times the database cannot hold, and 403 before parsing for others', async () => {
    const cases = [
      [`/fleet/devices/2147483648/track?from=0&to=1`, /device id/],
      [`/fleet/devices/${deviceId}/track?from=8640000000000001&to=8640000000000002`, /from is not a time/],
      [`/fleet/devices/${deviceId}/track?from=0&to=${Date.UTC(2026, 0, 1)}`, /92 days/],
    ] as const;
    for (const [path, message] of cases) {
      const res = await get(path, viewerToken);
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { errors: { message: string }[] }).errors[0]?.message).toMatch(message);
      expect((await get(path, nobodyToken)).status, path).toBe(403);
    }
  });
});

describe('GET /fleet/health', () => {
  it('reads the pipeline state under the instance prefix', async () => {
    const keys = redisKeys(directus.redisPrefix as string);
    await redis.set(keys.heartbeat('ing-1'), '{}', 'EX', 90);
    await redis.hset(
      keys.connectionsRegistry,
      '356307042441013',
      encodeRegistryValue({ instance: 'ing-1', connectedAt: 1 }),
    );
    expect((await get('/fleet/health')).status).toBe(403);
    const res = await get('/fleet/health', viewerToken);
    expect(res.status).toBe(200);
    const h = (await res.json()) as { instances: { id: string; connections: number }[]; telemetryBacklog: number };
    expect(h.instances).toEqual([expect.objectContaining({ id: 'ing-1', connections: 1 })]);
    expect(h.telemetryBacklog).toBe(0);
  });
});

describe('static files for the map', () => {
  it('serves the maplibre worker and the offline basemap without a session', async () => {
    const worker = await get('/fleet/maplibre-gl-worker.mjs');
    expect(worker.status).toBe(200);
    expect(worker.headers.get('content-type')).toMatch(/javascript/);
    expect((await worker.text()).length).toBeGreaterThan(100_000);
    const countries = await get('/fleet/basemap/countries.geojson');
    expect(countries.status).toBe(200);
    const fc = (await countries.json()) as { type: string; features: unknown[] };
    expect(fc.type).toBe('FeatureCollection');
    expect(fc.features.length).toBeGreaterThan(100);
  });
});
