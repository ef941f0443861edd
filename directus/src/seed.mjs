// @ts-check
/**
 * Seeds what a schema snapshot does not carry: roles, policies, permissions, settings and
 * (added by the features that need them) dashboards and panels.
 *
 * Seed files are `directus/seed/*.json`, applied in file-name order, each:
 *   {
 *     "rows": { "<directus table>": [ { "id": "<fixed uuid>", ...columns } ] },   // upserted by id
 *     "permissions": { "<policy id>": [ { "collection", "action", "fields"? } ] }, // replaced per policy
 *     "settings": { "<directus_settings column>": value },   // filled only while still empty (e.g. basemaps)
 *     "defaultLastPage": "/insights/<dashboard id>"          // where users who never navigated land after login
 *   }
 * Tables in `rows` are written in the order listed (put parents first: policies and roles before
 * directus_access, dashboards before panels). Rows use fixed UUIDs, so every run updates the same
 * rows: seeded rows are owned by the repository, and edits made in the Studio to them are reset on
 * the next deploy. Permissions have integer keys, so a policy's permissions are deleted and
 * recreated. Object/array column values are stored as JSON.
 *
 * The seed writes with SQL, in one transaction, before Directus starts (Directus caches schema and
 * permissions, so seeding a running instance needs a restart or a cache clear).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withClient } from './postgres.mjs';

/** Tables a seed file may write: Directus system tables only (data of our collections is not seed). */
const ALLOWED_TABLE = /^directus_(roles|policies|access|dashboards|panels|presets|translations|folders)$/;

/**
 * @typedef {object} SeedFile
 * @property {Record<string, Array<Record<string, unknown>>>} [rows]
 * @property {Record<string, Array<{ collection: string, action: string, fields?: string }>>} [permissions]
 * @property {Record<string, unknown>} [settings]
 * @property {string} [defaultLastPage]
 */

/**
 * @param {string} dir
 * @returns {Array<{ name: string, seed: SeedFile }>}
 */
export function readSeedFiles(dir) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((name) => {
      const seed = JSON.parse(readFileSync(join(dir, name), 'utf8'));
      validateSeed(name, seed);
      return { name, seed };
    });
}

/** @param {string} name @param {any} seed */
function validateSeed(name, seed) {
  for (const [table, rows] of Object.entries(seed.rows ?? {})) {
    if (!ALLOWED_TABLE.test(table)) throw new Error(`${name}: table ${table} may not be seeded`);
    if (!Array.isArray(rows)) throw new Error(`${name}: rows.${table} must be an array`);
    for (const row of rows) {
      if (typeof row.id !== 'string') throw new Error(`${name}: every row of ${table} needs a fixed string id`);
      for (const col of Object.keys(row)) {
        if (!/^[a-z_][a-z0-9_]*$/.test(col)) throw new Error(`${name}: bad column name ${col}`);
      }
    }
  }
  for (const col of Object.keys(seed.settings ?? {})) {
    if (!/^[a-z_][a-z0-9_]*$/.test(col)) throw new Error(`${name}: bad settings column ${col}`);
  }
  if (seed.defaultLastPage !== undefined && !/^\/[\w\-/]*$/.test(seed.defaultLastPage)) {
    throw new Error(`${name}: defaultLastPage must be an app path like /insights/<id>`);
  }
  for (const [policy, perms] of Object.entries(seed.permissions ?? {})) {
    if (!Array.isArray(perms)) throw new Error(`${name}: permissions.${policy} must be an array`);
    for (const p of perms) {
      // Core tier accepts only "all fields, no item rules" permissions.
      if (p.fields !== undefined && p.fields !== '*') throw new Error(`${name}: permissions must use fields "*"`);
    }
  }
}

/** @param {unknown} v */
const toSql = (v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : v);

/**
 * @param {import('pg').Client} client
 * @param {string} table
 * @param {Record<string, unknown>} row
 */
async function upsert(client, table, row) {
  const cols = Object.keys(row);
  const values = cols.map((c) => toSql(row[c]));
  const updates = cols.filter((c) => c !== 'id').map((c) => `"${c}" = EXCLUDED."${c}"`);
  await client.query(
    `INSERT INTO "${table}" (${cols.map((c) => `"${c}"`).join(', ')})
     VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})
     ON CONFLICT (id) DO ${updates.length ? `UPDATE SET ${updates.join(', ')}` : 'NOTHING'}`,
    values,
  );
}

/**
 * Project settings that make a fresh instance usable without prompts: an owner (so the Studio
 * does not ask for one) and a usage declaration (so it does not ask about a license). Only fills
 * values that are still empty, so an admin's later choices stand.
 * @param {import('pg').Client} client
 * @param {{ projectOwner?: string, projectName?: string }} opts
 */
async function seedSettings(client, { projectOwner, projectName }) {
  const existing = await client.query('SELECT id FROM directus_settings ORDER BY id LIMIT 1');
  if (!existing.rowCount) {
    await client.query('INSERT INTO directus_settings (project_name) VALUES ($1)', [projectName ?? 'Fleet']);
  }
  await client.query(
    `UPDATE directus_settings SET
       project_usage = COALESCE(project_usage, 'commercial'),
       project_owner = COALESCE(project_owner, $1),
       product_updates = COALESCE(product_updates, false)`,
    [projectOwner ?? null],
  );
}

/**
 * Applies every seed file and the settings in one transaction.
 * @param {import('./postgres.mjs').Connection} conn
 * @param {{ seedDir: string, projectOwner?: string, projectName?: string }} opts
 */
export async function applySeed(conn, { seedDir, projectOwner, projectName }) {
  const files = readSeedFiles(seedDir);
  await withClient(conn, async (client) => {
    await client.query('BEGIN');
    try {
      await seedSettings(client, { projectOwner, projectName });
      for (const { name, seed } of files) {
        try {
          for (const [table, rows] of Object.entries(seed.rows ?? {})) {
            for (const row of rows) await upsert(client, table, row);
          }
          for (const [policy, perms] of Object.entries(seed.permissions ?? {})) {
            await client.query('DELETE FROM directus_permissions WHERE policy = $1', [policy]);
            for (const p of perms) {
              await client.query(
                'INSERT INTO directus_permissions (collection, action, fields, permissions, validation, presets, policy) VALUES ($1, $2, $3, NULL, NULL, NULL, $4)',
                [p.collection, p.action, p.fields ?? '*', policy],
              );
            }
          }
          for (const [col, value] of Object.entries(seed.settings ?? {})) {
            await client.query(`UPDATE directus_settings SET "${col}" = COALESCE("${col}", $1)`, [toSql(value)]);
          }
          if (seed.defaultLastPage) {
            // Directus records last_page on every navigation, so only users who never used the app are moved.
            await client.query('UPDATE directus_users SET last_page = $1 WHERE last_page IS NULL', [
              seed.defaultLastPage,
            ]);
          }
        } catch (err) {
          throw new Error(`seed ${name}: ${/** @type {Error} */ (err).message}`);
        }
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  });
}
