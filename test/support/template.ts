/**
 * The template database every test database is cloned from: the full Directus schema (bootstrap +
 * snapshots/schema.yaml + after-schema SQL + seed), built once and cached.
 *
 * Its name carries a hash of everything that shapes it (snapshot, SQL, seed files, deploy code,
 * Directus version), so a change to any of them builds a new template and an unchanged tree
 * reuses the existing one. A PostgreSQL advisory lock makes concurrent builders (two vitest runs
 * started at once) wait for one another instead of building twice.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploy } from '../../directus/src/deploy.mjs';
import { DIRECTUS_DIR, REPO_ROOT } from '../../directus/src/paths.mjs';
import { maintenanceConnection, withClient } from '../../directus/src/postgres.mjs';
import { DB_PREFIX, TEST_ADMIN, TEST_PG } from './constants.js';

function filesIn(dir: string, ext: RegExp): string[] {
  return readdirSync(dir)
    .filter((f) => ext.test(f))
    .sort()
    .map((f) => join(dir, f));
}

/** Hash of the inputs of the template. */
export function templateHash(): string {
  const h = createHash('sha256');
  const inputs = [
    ...filesIn(join(REPO_ROOT, 'snapshots'), /\.(ya?ml|json|sql)$/),
    ...filesIn(join(DIRECTUS_DIR, 'sql'), /\.sql$/),
    ...filesIn(join(DIRECTUS_DIR, 'seed'), /\.json$/),
    // the code that builds it (not the rest of directus/src, so editing start-up code costs no rebuild)
    ...['deploy.mjs', 'seed.mjs', 'postgres.mjs', 'directus-process.mjs', 'inspector-patch.mjs'].map((f) =>
      join(DIRECTUS_DIR, 'src', f),
    ),
    join(REPO_ROOT, 'node_modules', 'directus', 'package.json'),
  ];
  for (const file of inputs) {
    h.update(file.slice(REPO_ROOT.length));
    h.update(readFileSync(file));
  }
  h.update(JSON.stringify(TEST_ADMIN));
  return h.digest('hex').slice(0, 12);
}

export function templateName(): string {
  return `${DB_PREFIX}tpl_${templateHash()}`;
}

const LOCK_KEY = 0x666c6565; // any constant shared by every builder ("flee")

/**
 * Makes sure the template for the current tree exists. Returns its name and whether it was built now.
 * A template counts as complete only once it is marked IS_TEMPLATE, so a build killed half-way is
 * rebuilt rather than reused.
 */
export async function ensureTemplate(log: (msg: string) => void = () => {}): Promise<{ name: string; built: boolean }> {
  const name = templateName();
  const admin = maintenanceConnection({ ...TEST_PG, database: 'postgres' });
  return withClient(admin, async (client) => {
    await client.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    try {
      const existing = await client.query('SELECT datistemplate FROM pg_database WHERE datname = $1', [name]);
      if (existing.rows[0]?.datistemplate) return { name, built: false };
      if (existing.rowCount) await client.query(`DROP DATABASE "${name}" WITH (FORCE)`);
      const stateDir = mkdtempSync(join(tmpdir(), 'fleet-template-'));
      log(`building test template database ${name} (Directus bootstrap + schema apply + seed, ~15 s)`);
      try {
        await deploy({ connection: { ...TEST_PG, database: name }, admin: TEST_ADMIN, stateDir, log });
      } catch (err) {
        await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => {});
        throw new Error(`building the test template failed (logs in ${stateDir}): ${(err as Error).message}`);
      }
      await client.query(`ALTER DATABASE "${name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
      rmSync(stateDir, { recursive: true, force: true });
      // Several checkouts (git worktrees) on one machine each have their own template: let them keep theirs.
      if (process.env.FLEET_TEST_KEEP_TEMPLATES !== '1') await dropStaleTemplates(client, name);
      return { name, built: true };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]);
    }
  });
}

/** Templates of older trees are dropped; one still being cloned from is left for next time. */
async function dropStaleTemplates(client: import('pg').Client, keep: string): Promise<void> {
  const stale = await client.query<{ datname: string }>(
    `SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2 AND datistemplate`,
    [`${DB_PREFIX}tpl\\_%`, keep],
  );
  for (const { datname } of stale.rows) {
    try {
      await client.query(`ALTER DATABASE "${datname}" WITH IS_TEMPLATE false`);
      await client.query(`DROP DATABASE "${datname}"`);
    } catch {
      // in use by a concurrent run: leave it
    }
  }
}
