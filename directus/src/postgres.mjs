// @ts-check
/**
 * PostgreSQL steps of the deploy that Directus does not do itself: create the database, enable
 * PostGIS (Directus's geometry fields need it before `bootstrap`/`schema apply`), run SQL files.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';

/**
 * @typedef {object} Connection
 * @property {string} host
 * @property {number} port
 * @property {string} user
 * @property {string} password
 * @property {string} database
 */

/**
 * Connection settings from Directus-style variables (DB_HOST, DB_PORT, ...), with local defaults.
 * @param {Record<string, string | undefined>} env
 * @returns {Connection}
 */
export function connectionFromEnv(env) {
  return {
    host: env.DB_HOST || '127.0.0.1',
    port: Number(env.DB_PORT || 5432),
    user: env.DB_USER || 'postgres',
    password: env.DB_PASSWORD ?? '',
    database: env.DB_DATABASE || 'fleet',
  };
}

/** Database names we create are interpolated into SQL, so they are restricted to a safe alphabet. */
const SAFE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** @param {string} name */
export function assertSafeDatabaseName(name) {
  if (!SAFE_NAME.test(name)) throw new Error(`unsafe database name "${name}" (use a-z, 0-9 and _ only)`);
  return name;
}

/**
 * Runs `fn` with a connected client, always closing it.
 * @template T
 * @param {Connection} conn
 * @param {(client: pg.Client) => Promise<T>} fn
 * @returns {Promise<T>}
 */
export async function withClient(conn, fn) {
  const client = new pg.Client({ ...conn, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * The maintenance connection (database `postgres`) used to create/drop databases.
 * @param {Connection} conn
 * @returns {Connection}
 */
export function maintenanceConnection(conn) {
  return { ...conn, database: 'postgres' };
}

/**
 * Creates the database if it does not exist. Returns true when it was created.
 * @param {Connection} conn
 */
export async function ensureDatabase(conn) {
  const name = assertSafeDatabaseName(conn.database);
  return withClient(maintenanceConnection(conn), async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return false;
    try {
      await client.query(`CREATE DATABASE "${name}"`);
    } catch (err) {
      // Another process created it between our check and our CREATE: that is the same outcome.
      if (/** @type {{code?: string}} */ (err).code === '42P04') return false;
      throw err;
    }
    return true;
  });
}

/** @param {Connection} conn */
export async function ensurePostgis(conn) {
  await withClient(conn, (client) => client.query('CREATE EXTENSION IF NOT EXISTS postgis'));
}

/**
 * Runs a SQL file (several statements) in one transaction.
 * @param {Connection} conn
 * @param {string} file
 */
export async function runSqlFile(conn, file) {
  const sql = readFileSync(file, 'utf8');
  await withClient(conn, async (client) => {
    await client.query('BEGIN');
    try {
      await client.query(sql);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw new Error(`${file}: ${/** @type {Error} */ (err).message}`);
    }
  });
}

/**
 * What the deploy needs to know about the server: its major version and whether the PostGIS
 * extension is available to it, or why it could not be reached. Never throws.
 * @param {Connection} conn
 * @returns {Promise<{ reachable: true, major: number, postgis: boolean } | { reachable: false, error: string }>}
 */
export async function postgresFacts(conn) {
  try {
    return await withClient(maintenanceConnection(conn), async (client) => {
      const version = await client.query('SHOW server_version_num');
      const postgis = await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'");
      return {
        reachable: /** @type {const} */ (true),
        major: Math.floor(Number(version.rows[0].server_version_num) / 10000),
        postgis: Boolean(postgis.rowCount),
      };
    });
  } catch (err) {
    const e = /** @type {Error & {code?: string}} */ (err);
    return { reachable: false, error: e.code ?? e.message };
  }
}

/**
 * What is missing for a deploy, as human sentences (empty when PostgreSQL is reachable and PostGIS
 * is installed). Never throws.
 * @param {Connection} conn
 * @param {{ postgis?: boolean }} [opts] `postgis: false` leaves PostGIS out (the preflight reports
 *   it with this machine's install command)
 * @returns {Promise<string[]>}
 */
export async function checkPostgres(conn, opts = {}) {
  const facts = await postgresFacts(conn);
  if (!facts.reachable) {
    return [
      `PostgreSQL is not reachable at ${conn.host}:${conn.port} as user "${conn.user}" (${facts.error}). ` +
        'Install and start PostgreSQL >= 14 with PostGIS, or set DB_HOST/DB_PORT/DB_USER/DB_PASSWORD in .env.',
    ];
  }
  const problems = [];
  if (facts.major < 14) problems.push(`PostgreSQL ${conn.host}:${conn.port} is older than 14: upgrade PostgreSQL.`);
  if (!facts.postgis && opts.postgis !== false) {
    problems.push(
      `PostGIS is not installed on the PostgreSQL server at ${conn.host}:${conn.port}. ` +
        'Install it (Debian/Ubuntu: `apt-get install postgresql-<version>-postgis-3`; macOS: `brew install postgis`).',
    );
  }
  return problems;
}
