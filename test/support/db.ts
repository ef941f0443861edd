/**
 * Test databases: each a fresh clone of the template (full Directus schema + indexes + seed).
 *
 *   const db = await createTestDatabase();
 *   await db.knex('devices').insert({ imei: '356307042441013', name: 'Van 1' });
 *   startDirectus({ database: db })             // see ./directus.ts
 *   db.connection                               // { host, port, user, password, database } for the daemon / pg
 *   await db.drop();                            // in afterAll (leftovers older than 2 h: dropped by global setup)
 *
 * Cloning takes ~0.1-0.5 s. The template is built by test/global-setup.ts; a test file run
 * without it (or after a schema change) builds it here on first use.
 */
import { randomBytes } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import type { Connection } from '../../directus/src/postgres.mjs';
import { withClient } from '../../directus/src/postgres.mjs';
import { DB_PREFIX, TEST_PG } from './constants.js';
import { ensureTemplate } from './template.js';

export interface TestDatabase {
  /** Database name, unique per call. */
  name: string;
  connection: Connection;
  /** A knex instance on the database (pool of up to 4); destroyed by drop(). */
  knex: Knex;
  /** Closes the knex pool and drops the database (terminating other connections to it). */
  drop(): Promise<void>;
}

const live = new Set<TestDatabase>();
let templatePromise: Promise<{ name: string }> | undefined;

const MAINTENANCE = { ...TEST_PG, database: 'postgres' };

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `${DB_PREFIX}${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withClient(MAINTENANCE, async (client) => {
    for (let attempt = 0; ; attempt++) {
      templatePromise ??= ensureTemplate();
      const template = (await templatePromise).name;
      try {
        await client.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt >= 20) throw err;
        if (code === '3D000') {
          // A run on a newer tree (say, a changed seed file) replaced the template: use the current one.
          templatePromise = undefined;
        } else if (code !== '55006') {
          throw err;
        }
        // 55006: two clones of one template at the same instant collide; retrying briefly resolves it.
        await new Promise((r) => setTimeout(r, 100 + attempt * 50));
      }
    }
  });
  const connection: Connection = { ...TEST_PG, database: name };
  const knex = knexFactory({ client: 'pg', connection, pool: { min: 0, max: 4 } });
  let dropped = false;
  const db: TestDatabase = {
    name,
    connection,
    knex,
    async drop() {
      if (dropped) return;
      dropped = true;
      live.delete(db);
      await knex.destroy();
      await withClient(MAINTENANCE, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
  live.add(db);
  return db;
}

/** Drops every database this process created and did not drop yet (called by the harness on exit). */
export async function dropAllTestDatabases(): Promise<void> {
  await Promise.allSettled([...live].map((db) => db.drop()));
}
