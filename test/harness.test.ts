/**
 * The test harness itself (test/support): isolation and clean-up of databases, Redis prefixes and
 * Directus processes. Harness API: see test/support/index.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { portProblem } from '../directus/src/net.mjs';
import { withClient } from '../directus/src/postgres.mjs';
import { createTestDatabase, createTestRedis, startDirectus, TEST_PG } from './support/index.js';
import { templateName } from './support/template.js';

const databaseExists = (name: string) =>
  withClient({ ...TEST_PG, database: 'postgres' }, async (c) => {
    const r = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return r.rowCount === 1;
  });

describe('createTestDatabase', () => {
  it('clones the template into a fresh database per call and drops it', async () => {
    const [a, b] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    try {
      expect(a.name).not.toBe(b.name);
      expect(await databaseExists(templateName())).toBe(true);
      // Same schema, separate data.
      await a.knex('devices').insert({ imei: '356307042441013' });
      expect(await b.knex('devices').count({ n: '*' }).first()).toEqual({ n: '0' });
      const postgis = await a.knex.raw("SELECT extname FROM pg_extension WHERE extname = 'postgis'");
      expect(postgis.rows).toHaveLength(1);
    } finally {
      await Promise.all([a.drop(), b.drop()]);
    }
    expect(await databaseExists(a.name)).toBe(false);
    expect(await databaseExists(b.name)).toBe(false);
  });
});

describe('createTestRedis', () => {
  it('deletes only its own keys', async () => {
    const mine = await createTestRedis();
    const other = await createTestRedis();
    try {
      expect(mine.prefix).not.toBe(other.prefix);
      expect(mine.keys.telemetryAvl).toBe(`${mine.prefix}telemetry:avl`);
      await mine.redis.xadd(mine.keys.telemetryAvl, '*', 'k', 'v');
      await mine.redis.set(`${mine.prefix}x`, '1');
      await other.redis.set(`${other.prefix}x`, '1');
      await mine.cleanup();
      expect(await other.redis.exists(`${other.prefix}x`, `${mine.prefix}x`, mine.keys.telemetryAvl)).toBe(1);
    } finally {
      await other.cleanup();
    }
  });
});

describe('startDirectus', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fleet-harness-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('runs Directus with the bundle on its own port and frees it on stop', async () => {
    const db = await createTestDatabase();
    const d = await startDirectus({ database: db });
    try {
      expect(await (await fetch(`${d.url}/server/ping`)).text()).toBe('pong');
      const ext = await fetch(`${d.url}/extensions`, { headers: { authorization: `Bearer ${d.adminToken}` } });
      const names = ((await ext.json()) as { data: Array<{ bundle: string | null; schema: { name?: string } }> }).data;
      expect(names.some((e) => e.schema?.name === 'directus-extension-fleet')).toBe(true);
      expect(d.redisPrefix).toMatch(/^test:/);
    } finally {
      await d.stop();
      await db.drop();
    }
    expect(await portProblem('127.0.0.1', d.port)).toBeNull();
  });

  it('leaves the keys of a caller-owned Redis prefix alone on stop', async () => {
    const db = await createTestDatabase();
    const r = await createTestRedis();
    try {
      await r.redis.xadd(r.keys.commandsResponses, '*', 'k', 'v');
      const d = await startDirectus({ database: db, redisPrefix: r.prefix });
      await d.stop();
      expect(await r.redis.xlen(r.keys.commandsResponses)).toBe(1);
    } finally {
      await r.cleanup();
      await db.drop();
    }
  });

  it('fails to start, with the log tail, when an extension cannot load', async () => {
    const broken = join(tmp, 'extensions');
    mkdirSync(join(broken, 'broken'), { recursive: true });
    writeFileSync(join(broken, 'broken', 'package.json'), JSON.stringify({ name: 'broken', 'directus:extension': {} }));
    const db = await createTestDatabase();
    try {
      await expect(startDirectus({ database: db, env: { EXTENSIONS_PATH: broken } })).rejects.toThrow(
        /exited with code 1[\s\S]*broken/,
      );
    } finally {
      await db.drop();
    }
  });
});
