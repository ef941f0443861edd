// @ts-check
/**
 * Regenerates `snapshots/schema.yaml` from `directus/schema/collections.mjs` with a real Directus:
 * a scratch database gets the collections through the REST API (exactly what the Studio would
 * do), then `GET /schema/snapshot?includeCollections=...&export=yaml` exports a partial
 * (version 2) snapshot that only ever touches these collections when applied.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collections, relations, SNAPSHOT_COLLECTIONS } from '../schema/collections.mjs';
import { directusInstanceEnv, prepareStateDir, runDirectusCli, startDirectusServer } from './directus-process.mjs';
import { generateSecret, writeEnvFile } from './env-file.mjs';
import { freePort } from './net.mjs';
import { ensureDatabase, ensurePostgis, maintenanceConnection, withClient } from './postgres.mjs';
import { directusRest } from './rest.mjs';

/**
 * @param {{ connection: import('./postgres.mjs').Connection, outFile: string, log?: (msg: string) => void }} opts
 *   `connection.database` is ignored: a scratch database is created and dropped.
 */
export async function makeSnapshot({ connection, outFile, log = () => {} }) {
  const database = `fleet_snapshot_${process.pid}_${Date.now().toString(36)}`;
  const conn = { ...connection, database };
  const stateDir = mkdtempSync(join(tmpdir(), 'fleet-snapshot-'));
  const token = generateSecret();
  const port = await freePort();
  const configPath = join(stateDir, 'directus.env');
  prepareStateDir(stateDir);
  writeEnvFile(
    configPath,
    directusInstanceEnv({
      connection: conn,
      port,
      secret: generateSecret(),
      stateDir,
      admin: { email: 'admin@example.com', password: generateSecret(), token },
    }),
  );
  const logFile = join(stateDir, 'directus.log');
  /** @type {import('./directus-process.mjs').RunningDirectus | undefined} */
  let server;
  try {
    log(`scratch database ${database}`);
    await ensureDatabase(conn);
    await ensurePostgis(conn);
    await runDirectusCli(['bootstrap'], { configPath, logFile });
    server = await startDirectusServer({ configPath, url: `http://127.0.0.1:${port}`, logFile });
    const api = directusRest(server.url, token);
    for (const c of collections) {
      log(`create ${c.collection}`);
      await api.post('/collections', c);
    }
    for (const r of relations) await api.post('/relations', r);
    const yaml = await api.get(`/schema/snapshot?includeCollections=${SNAPSHOT_COLLECTIONS.join(',')}&export=yaml`);
    if (typeof yaml !== 'string' || !yaml.includes('version: 2')) throw new Error('unexpected snapshot export');
    writeFileSync(outFile, yaml);
    log(`wrote ${outFile}`);
  } catch (err) {
    throw new Error(`${/** @type {Error} */ (err).message}\n(Directus log: ${logFile})`);
  } finally {
    await server?.stop();
    await withClient(maintenanceConnection(conn), (c) => c.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`));
  }
  rmSync(stateDir, { recursive: true, force: true });
}
