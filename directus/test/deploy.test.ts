/**
 * The deploy building blocks (directus/src) as plain functions, against the real local
 * PostgreSQL and Redis where they touch them. Harness: test/support/index.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// dotenv is what Directus's @directus/env parses .env files with.
import { parse as dotenvParse } from 'dotenv';
import { afterAll, describe, expect, it } from 'vitest';
import { startOwnRedis, TEST_ADMIN, TEST_PG, useTestDatabase } from '../../test/support/index.js';
import { deploy } from '../src/deploy.mjs';
import { daemonRole, devDirectusEnv, lineWriter } from '../src/dev-stack.mjs';
import { directusInstanceEnv } from '../src/directus-process.mjs';
import { ensureEnvFile, formatEnv, parseEnv } from '../src/env-file.mjs';
import { extensionBundleStale } from '../src/extension-bundle.mjs';
import { inspectorFile, patchSchemaInspector } from '../src/inspector-patch.mjs';
import { freePort } from '../src/net.mjs';
import { DIRECTUS_DIR, SEED_DIR } from '../src/paths.mjs';
import { checkPostgres } from '../src/postgres.mjs';
import { checkRedis, redisPersistenceWarning } from '../src/preflight.mjs';
import { applySeed, readSeedFiles } from '../src/seed.mjs';

const tmp = mkdtempSync(join(tmpdir(), 'fleet-deploy-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('.env files', () => {
  it('round-trips values with spaces, quotes, # and backslashes, as Directus (dotenv) reads them too', () => {
    const env = { A: 'plain', B: 'two words', C: 'has#hash', D: 'say "hi"', E: '', F: "it's", G: 'back\\n', H: 'a`b' };
    const text = formatEnv(env);
    expect(parseEnv(text)).toEqual(env);
    expect(dotenvParse(text)).toEqual(env);
    expect(() => formatEnv({ X: `both ' and "` })).toThrow(/X/);
    expect(parseEnv('# comment\n\nX = 1 \nY="quoted"\nnot a line\n')).toEqual({ X: '1', Y: 'quoted' });
  });

  it('creates .env once, with a generated SECRET, and never overwrites it', () => {
    const example = join(tmp, 'example.env');
    const env = join(tmp, '.env');
    writeFileSync(example, 'PORT=8055\nSECRET=\nADMIN_PASSWORD=admin\n');
    expect(ensureEnvFile(env, example)).toBe(true);
    const first = parseEnv(readFileSync(env, 'utf8'));
    expect(first.SECRET).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.PORT).toBe('8055');
    expect(ensureEnvFile(env, example)).toBe(false);
    expect(parseEnv(readFileSync(env, 'utf8')).SECRET).toBe(first.SECRET);
  });

  it('.env.example carries what Directus and the daemon both need', () => {
    const example = parseEnv(readFileSync(join(DIRECTUS_DIR, '..', '.env.example'), 'utf8'));
    expect(example).toMatchObject({
      PUBLIC_URL: 'http://127.0.0.1:8055',
      ADMIN_EMAIL: 'admin@example.com',
      ADMIN_PASSWORD: 'admin',
      DB_HOST: '127.0.0.1',
      DB_PORT: '5432',
      DB_DATABASE: 'fleet',
      DB_USER: 'postgres',
      REDIS: 'redis://127.0.0.1:6379',
      EXTENSIONS_MUST_LOAD: 'true',
      WEBSOCKETS_ENABLED: 'true',
      SYNCHRONIZATION_STORE: 'redis',
      PROJECT_OWNER: 'admin@example.com',
    });
    expect(example.SECRET).toBe('');
  });
});

describe('Directus configuration', () => {
  it('namespaces every Redis key of an instance under its prefix', () => {
    const env = directusInstanceEnv({
      connection: { ...TEST_PG, database: 'x' },
      port: 1234,
      secret: 's',
      stateDir: '/state',
      redisUrl: 'redis://127.0.0.1:6379',
      redisPrefix: 'test:abc:',
    });
    expect(env).toMatchObject({
      REDIS: 'redis://127.0.0.1:6379',
      REDIS_BUS_NAMESPACE: 'test:abc:directus:bus',
      REDIS_LOCK_NAMESPACE: 'test:abc:directus:lock',
      SYNCHRONIZATION_NAMESPACE: 'test:abc:directus-sync',
      FLEET_REDIS_PREFIX: 'string:test:abc:',
      TEMP_PATH: '/state/tmp',
      PUBLIC_URL: 'http://127.0.0.1:1234',
      EXTENSIONS_MUST_LOAD: true,
    });
    const noRedis = directusInstanceEnv({
      connection: { ...TEST_PG, database: 'x' },
      port: 1,
      secret: 's',
      stateDir: '/s',
    });
    expect(noRedis.REDIS_ENABLED).toBe(false);
    expect(noRedis.REDIS).toBeUndefined();
  });

  it('resolves the dev .env paths against directus/, where Directus runs', () => {
    const env = devDirectusEnv({ EXTENSIONS_PATH: './extensions', STORAGE_LOCAL_ROOT: '/srv/uploads' });
    expect(env.EXTENSIONS_PATH).toBe(join(DIRECTUS_DIR, 'extensions'));
    expect(env.STORAGE_LOCAL_ROOT).toBe('/srv/uploads');
    expect(env.TEMP_PATH).toBe(join(DIRECTUS_DIR, '.tmp', 'directus'));
  });
});

describe('start-up helpers', () => {
  it('starts only the daemon roles whose code exists', () => {
    const root = join(tmp, 'repo');
    expect(daemonRole(root)).toEqual({
      role: null,
      missing: ['daemon/src/ingestion/main.ts', 'daemon/src/processor/main.ts'],
    });
    mkdirSync(join(root, 'daemon/src/ingestion'), { recursive: true });
    writeFileSync(join(root, 'daemon/src/ingestion/main.ts'), '');
    expect(daemonRole(root).role).toBe('ingest');
    mkdirSync(join(root, 'daemon/src/processor'), { recursive: true });
    writeFileSync(join(root, 'daemon/src/processor/main.ts'), '');
    expect(daemonRole(root)).toEqual({ role: 'all', missing: [] });
  });

  it('prefixes whole lines, holding back a partial one', () => {
    const out: string[] = [];
    const w = lineWriter('[x] ', (l) => out.push(l));
    w('one\ntw');
    w('o\n');
    expect(out).toEqual(['[x] one\n', '[x] two\n']);
  });

  it('sees when the extension bundle is missing or older than its sources', () => {
    const ext = join(tmp, 'ext');
    mkdirSync(join(ext, 'src'), { recursive: true });
    writeFileSync(join(ext, 'package.json'), '{}');
    writeFileSync(join(ext, 'src', 'index.ts'), '');
    expect(extensionBundleStale(ext)).toBe(true);
    mkdirSync(join(ext, 'dist'));
    writeFileSync(join(ext, 'dist', 'api.js'), '');
    writeFileSync(join(ext, 'dist', 'app.js'), '');
    const past = new Date(Date.now() - 60_000);
    for (const f of ['package.json', 'src/index.ts', 'src']) utimesSync(join(ext, f), past, past);
    expect(extensionBundleStale(ext)).toBe(false);
    writeFileSync(join(ext, 'src', 'index.ts'), 'changed');
    utimesSync(join(ext, 'src', 'index.ts'), new Date(), new Date(Date.now() + 1000));
    expect(extensionBundleStale(ext)).toBe(true);
  });
});

describe('preflight', () => {
  it('names the missing service and what to do', async () => {
    const port = await freePort(); // nothing listens there
    const pg = await checkPostgres({ ...TEST_PG, port, database: 'postgres' });
    expect(pg).toHaveLength(1);
    expect(pg[0]).toMatch(
      /PostgreSQL is not reachable at 127\.0\.0\.1:\d+.*Install and start PostgreSQL >= 14 with PostGIS/,
    );
    const redis = await checkRedis(`redis://127.0.0.1:${port}`);
    expect(redis).toHaveLength(1);
    expect(redis[0]).toMatch(/Redis is not reachable.*Install and start Redis >= 7/);
  });

  it('warns when Redis would lose acknowledged data, and not when it fsyncs every write', async () => {
    const bare = await startOwnRedis();
    const durable = await startOwnRedis({ persist: true });
    try {
      expect(await redisPersistenceWarning(bare.url)).toMatch(/no append-only file and no snapshots/);
      expect(await redisPersistenceWarning(durable.url)).toBeNull();
    } finally {
      await bare.stop();
      await durable.stop();
    }
  });

  it('is silent when the services are there', async () => {
    expect(await checkPostgres({ ...TEST_PG, database: 'postgres' })).toEqual([]);
    expect(await checkRedis(process.env.TEST_REDIS ?? 'redis://127.0.0.1:6379')).toEqual([]);
  });
});

describe('seed', () => {
  const db = useTestDatabase();

  it('refuses tables outside the allowed system tables and field-restricted permissions', () => {
    const dir = join(tmp, 'bad-seed');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ rows: { devices: [{ id: '1' }] } }));
    expect(() => readSeedFiles(dir)).toThrow(/table devices may not be seeded/);
    writeFileSync(
      join(dir, 'a.json'),
      JSON.stringify({ permissions: { p: [{ collection: 'x', action: 'read', fields: 'id' }] } }),
    );
    expect(() => readSeedFiles(dir)).toThrow(/fields "\*"/);
  });

  it('is idempotent and leaves an admin’s own settings alone', async () => {
    const count = async () =>
      Number(((await db.knex('directus_permissions').count({ n: '*' }).first()) as { n: string }).n);
    const before = await count();
    await db.knex('directus_settings').update({ project_usage: 'personal' });
    await applySeed(db.connection, { seedDir: SEED_DIR, projectOwner: 'someone@example.com' });
    await applySeed(db.connection, { seedDir: SEED_DIR, projectOwner: 'someone@example.com' });
    expect(await count()).toBe(before);
    const settings = await db.knex('directus_settings').first('project_usage', 'project_owner');
    expect(settings).toEqual({ project_usage: 'personal', project_owner: TEST_ADMIN.email });
    const roles = await db.knex('directus_roles').whereIn('name', ['Operator', 'Viewer']).count({ n: '*' }).first();
    expect(Number((roles as { n: string }).n)).toBe(2);
  });

  it('seeds dashboards, empty settings and the landing page of users who never navigated', async () => {
    const dir = join(tmp, 'dashboard-seed');
    mkdirSync(dir, { recursive: true });
    const dashboard = '00000000-0000-4000-8000-0000000000d1';
    writeFileSync(
      join(dir, '20-dashboard.json'),
      JSON.stringify({
        rows: {
          directus_dashboards: [{ id: dashboard, name: 'Fleet', icon: 'map' }],
          directus_panels: [
            {
              id: '00000000-0000-4000-8000-0000000000e1',
              dashboard,
              name: 'Note',
              type: 'label',
              position_x: 1,
              position_y: 1,
              width: 10,
              height: 4,
              show_header: false,
              options: { text: 'hello' },
            },
          ],
        },
        settings: {
          basemaps: [{ name: 'Blank', type: 'style', url: '/fleet/style.json' }],
          project_usage: 'community',
        },
        defaultLastPage: `/insights/${dashboard}`,
      }),
    );
    await db.knex('directus_users').update({ last_page: null });
    await applySeed(db.connection, { seedDir: dir });
    await applySeed(db.connection, { seedDir: dir });
    const panel = await db.knex('directus_panels').where({ dashboard }).first('options');
    expect(panel.options).toEqual({ text: 'hello' });
    const settings = await db.knex('directus_settings').first('basemaps', 'project_usage');
    expect(settings.basemaps).toEqual([{ name: 'Blank', type: 'style', url: '/fleet/style.json' }]);
    expect(settings.project_usage).not.toBe('community'); // already answered: left alone
    const admin = await db.knex('directus_users').where({ email: TEST_ADMIN.email }).first('last_page');
    expect(admin.last_page).toBe(`/insights/${dashboard}`);
  });

  it('rolls back a failing seed file completely', async () => {
    const dir = join(tmp, 'failing-seed');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, '1.json'),
      JSON.stringify({ rows: { directus_roles: [{ id: '00000000-0000-4000-8000-000000000001', name: 'Temp' }] } }),
    );
    writeFileSync(
      join(dir, '2.json'),
      JSON.stringify({ rows: { directus_roles: [{ id: 'not-a-uuid', name: 'Bad' }] } }),
    );
    await expect(applySeed(db.connection, { seedDir: dir })).rejects.toThrow(/seed 2\.json/);
    expect(await db.knex('directus_roles').where({ name: 'Temp' }).first()).toBeUndefined();
  });
});

describe('schema inspector patch', () => {
  it("makes a copy of Directus's own inspector list partitioned tables, once, and refuses an inspector it does not know", () => {
    const installed = inspectorFile(DIRECTUS_DIR);
    const copy = join(tmp, 'inspector.js');
    const original = readFileSync(installed, 'utf8').replaceAll("rel.relkind IN ('r', 'p')", "rel.relkind = 'r'");
    writeFileSync(copy, original);
    expect(patchSchemaInspector(copy)).toBe(true);
    const patched = readFileSync(copy, 'utf8');
    expect(patched.split("rel.relkind IN ('r', 'p')")).toHaveLength(7);
    expect(patched).not.toContain("rel.relkind = 'r'");
    expect(patchSchemaInspector(copy)).toBe(false);
    expect(readFileSync(copy, 'utf8')).toBe(patched);
    writeFileSync(copy, original.replace("rel.relkind = 'r'", "rel.relkind = 'x'"));
    expect(() => patchSchemaInspector(copy)).toThrow(/expected 6/);
  });
});

describe('deploy', () => {
  const db = useTestDatabase();

  it('runs again on a deployed database without touching its data', async () => {
    const [device] = await db.knex('devices').insert({ imei: '356307042441013', name: 'kept' }).returning('id');
    const now = new Date();
    await db.knex('positions').insert({
      id: db.knex.raw('position_id(?::int, ?::timestamptz, 0)', [device.id, now]),
      device: device.id,
      fix_time: now,
      event_io_id: 0,
    });
    const stateDir = mkdtempSync(join(tmp, 'state-'));
    const steps: string[] = [];
    await deploy({ connection: db.connection, admin: TEST_ADMIN, stateDir, log: (s) => steps.push(s) });
    expect(steps).toEqual([
      `database ${db.name} on ${db.connection.host}:${db.connection.port}`,
      'positions partitioned',
      'directus bootstrap',
      'directus schema apply',
      'positions partitioned',
      'indexes',
      'seed',
    ]);
    expect(await db.knex('devices').where({ id: device.id }).first('name')).toEqual({ name: 'kept' });
    expect(Number(((await db.knex('positions').count({ n: '*' }).first()) as { n: string }).n)).toBe(1);
    const admins = await db.knex('directus_users').count({ n: '*' }).first();
    expect(Number((admins as { n: string }).n)).toBe(1);
  }, 180_000); // two Directus CLI runs
});
