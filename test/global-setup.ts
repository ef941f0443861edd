/**
 * Vitest global setup (runs once per `vitest run`, before any test file):
 *  1. installs PostGIS and Chromium when missing and it can (root on Debian/Ubuntu, unless
 *     FLEET_NO_SYSTEM_INSTALL=1; see directus/src/preflight.mjs), and checks that PostgreSQL (with
 *     PostGIS), Redis and Chromium are there, failing with one clear message and the command to run;
 *  2. builds the extension bundle when `extensions/dist` is missing or older than its sources, so
 *     startDirectus() loads what is in the tree;
 *  3. builds (or reuses) the template database the test databases are cloned from;
 *  4. drops test databases left over by crashed runs (older than 2 hours).
 *
 * The harness itself: test/support/index.ts.
 */
import { buildExtensionBundle, extensionBundleStale } from '../directus/src/extension-bundle.mjs';
import { withClient } from '../directus/src/postgres.mjs';
import { preflight } from '../directus/src/preflight.mjs';
import { DB_PREFIX, TEST_PG, TEST_REDIS_URL } from './support/constants.js';
import { ensureTemplate } from './support/template.js';

const BUILD_LOCK_KEY = 0x666c6566;

async function dropLeftoverDatabases(): Promise<void> {
  const cutoff = Date.now() - 2 * 3600_000;
  await withClient({ ...TEST_PG, database: 'postgres' }, async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datname LIKE $1 AND NOT datistemplate',
      [`${DB_PREFIX}%`],
    );
    for (const { datname } of rows) {
      const stamp = /^fleet_test_([0-9a-z]+)_[0-9a-f]{8}$/.exec(datname)?.[1];
      if (stamp && Number.parseInt(stamp, 36) < cutoff) {
        await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => {});
      }
    }
  });
}

export default async function setup(): Promise<void> {
  const problems = await preflight({
    connection: { ...TEST_PG, database: 'postgres' },
    redisUrl: TEST_REDIS_URL,
    needs: ['postgis', 'chromium', 'haproxy'],
    log: (m) => console.log(`[global-setup] ${m}`),
  });
  if (problems.length) {
    throw new Error(`The tests need PostgreSQL with PostGIS, Redis and Chromium:\n  - ${problems.join('\n  - ')}`);
  }
  // Several vitest runs (engineers working in parallel) must not write extensions/dist at once.
  await withClient({ ...TEST_PG, database: 'postgres' }, async (client) => {
    await client.query('SELECT pg_advisory_lock($1)', [BUILD_LOCK_KEY]);
    try {
      if (extensionBundleStale()) {
        console.log('[global-setup] building the extension bundle (npm run build -w extensions)');
        buildExtensionBundle();
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [BUILD_LOCK_KEY]);
    }
  });
  const { name, built } = await ensureTemplate((m) => console.log(`[global-setup] ${m}`));
  if (built) console.log(`[global-setup] template ${name} ready`);
  await dropLeftoverDatabases();
}
