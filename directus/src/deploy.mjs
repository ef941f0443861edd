// @ts-check
/**
 * The deploy sequence, run before every start (idempotent; safe on an empty or an existing
 * database):
 *
 *   ensureDatabase → CREATE EXTENSION postgis → directus/sql/positions-partitions.sql →
 *   directus bootstrap → directus schema apply (snapshots/schema.yaml, partial) →
 *   directus/sql/positions-partitions.sql → directus/sql/after-schema.sql → seed (directus/seed/*.json)
 *
 * PostGIS must exist before bootstrap/apply (geometry columns), and `schema apply` on a database
 * that was never bootstrapped exits 0 having done nothing, hence the order. positions-partitions.sql
 * runs on both sides of `schema apply`: before it, to convert an existing unpartitioned positions
 * table (whose bigint id the snapshot's uuid could not be applied to); after it, to convert the
 * plain table `schema apply` just created on an empty database.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { directusInstanceEnv, runDirectusCli } from './directus-process.mjs';
import { generateSecret, writeEnvFile } from './env-file.mjs';
import { AFTER_SCHEMA_SQL, POSITIONS_SQL, SEED_DIR, SNAPSHOT_FILE } from './paths.mjs';
import { ensureDatabase, ensurePostgis, runSqlFile } from './postgres.mjs';
import { applySeed } from './seed.mjs';

/**
 * @typedef {object} DeployOptions
 * @property {import('./postgres.mjs').Connection} connection
 * @property {{ email: string, password: string, token?: string }} admin the first admin, created by bootstrap on an empty database
 * @property {string} stateDir scratch folder for the CLI's config, temp files and log
 * @property {string} [projectOwner] default: the admin's email
 * @property {string} [snapshotFile]
 * @property {string} [afterSchemaSql]
 * @property {string} [seedDir]
 * @property {(step: string) => void} [log]
 */

/**
 * Steps before Directus's CLI: the database, PostGIS, and positions partitioned (if it exists).
 * @param {import('./postgres.mjs').Connection} conn
 * @param {(step: string) => void} [log]
 */
export async function prepareDatabase(conn, log = () => {}) {
  log(`database ${conn.database} on ${conn.host}:${conn.port}`);
  if (await ensureDatabase(conn)) log(`created database ${conn.database}`);
  await ensurePostgis(conn);
  log('positions partitioned');
  await runSqlFile(conn, POSITIONS_SQL);
}

/**
 * Steps after `schema apply`: indexes and seed.
 * @param {import('./postgres.mjs').Connection} conn
 * @param {{ projectOwner?: string, afterSchemaSql?: string, seedDir?: string, log?: (step: string) => void }} [o]
 */
export async function finishDeploy(conn, o = {}) {
  const log = o.log ?? (() => {});
  log('positions partitioned');
  await runSqlFile(conn, POSITIONS_SQL);
  log('indexes');
  await runSqlFile(conn, o.afterSchemaSql ?? AFTER_SCHEMA_SQL);
  log('seed');
  await applySeed(conn, { seedDir: o.seedDir ?? SEED_DIR, projectOwner: o.projectOwner });
}

/**
 * Writes the env file for a Directus CLI run in `stateDir` and returns its path. The CLI loads API
 * extensions before any command; our hooks have no business during a deploy (and may open Redis
 * connections), so it sees an empty extensions folder.
 * @param {string} stateDir
 * @param {string} name
 * @param {Omit<Parameters<typeof directusInstanceEnv>[0], 'port' | 'secret' | 'stateDir' | 'extra'>} instance
 * @returns {string}
 */
function writeCliConfig(stateDir, name, instance) {
  const noExtensions = join(stateDir, 'no-extensions');
  mkdirSync(noExtensions, { recursive: true });
  mkdirSync(join(stateDir, 'tmp'), { recursive: true });
  const configPath = join(stateDir, name);
  const extra = { EXTENSIONS_PATH: noExtensions, EXTENSIONS_MUST_LOAD: false };
  writeEnvFile(configPath, directusInstanceEnv({ ...instance, port: 0, secret: generateSecret(), stateDir, extra }));
  return configPath;
}

/**
 * Runs the whole sequence. Throws with the failing step's name and output.
 * @param {DeployOptions} o
 */
export async function deploy(o) {
  const log = o.log ?? (() => {});
  const conn = o.connection;
  await prepareDatabase(conn, log);

  const configPath = writeCliConfig(o.stateDir, 'deploy.env', {
    connection: conn,
    admin: o.admin,
    projectOwner: o.projectOwner,
    logLevel: 'warn',
  });
  const logFile = join(o.stateDir, 'deploy.log');
  log('directus bootstrap');
  await runDirectusCli(['bootstrap'], { configPath, logFile });
  log('directus schema apply');
  await runDirectusCli(['schema', 'apply', '--yes', o.snapshotFile ?? SNAPSHOT_FILE], { configPath, logFile });
  await finishDeploy(conn, {
    projectOwner: o.projectOwner ?? o.admin.email,
    afterSchemaSql: o.afterSchemaSql,
    seedDir: o.seedDir,
    log,
  });
}

/**
 * Compares a database with the snapshot (`directus schema apply --dry-run`) without changing it.
 * @param {{ connection: import('./postgres.mjs').Connection, stateDir: string, snapshotFile?: string }} o
 * @returns {Promise<{ inSync: boolean, output: string }>} `output` lists the differences, if any
 */
export async function compareSchema(o) {
  const configPath = writeCliConfig(o.stateDir, 'compare.env', { connection: o.connection, logLevel: 'info' });
  const output = await runDirectusCli(['schema', 'apply', '--dry-run', o.snapshotFile ?? SNAPSHOT_FILE], {
    configPath,
  });
  return { inSync: /No changes to apply/.test(output), output };
}
