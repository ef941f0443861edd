// @ts-check
/**
 * The deploy steps that need PostgreSQL but not Directus, for containers where Directus's CLI runs
 * in its own image (see docker-compose.yml):
 *
 *   node directus/src/deploy-cli.mjs prepare   # database + PostGIS, before `directus bootstrap`
 *   node directus/src/deploy-cli.mjs finish    # indexes + seed, after `directus schema apply`
 *
 * Reads DB_* and PROJECT_OWNER / ADMIN_EMAIL from the environment.
 */
import { finishDeploy, prepareDatabase } from './deploy.mjs';
import { connectionFromEnv } from './postgres.mjs';

const step = process.argv[2];
const conn = connectionFromEnv(process.env);
const log = (/** @type {string} */ m) => console.log(`[deploy] ${m}`);
try {
  if (step === 'prepare') await prepareDatabase(conn, log);
  else if (step === 'finish') {
    await finishDeploy(conn, { projectOwner: process.env.PROJECT_OWNER || process.env.ADMIN_EMAIL, log });
  } else {
    console.error('usage: deploy-cli.mjs prepare|finish');
    process.exitCode = 2;
  }
} catch (err) {
  console.error(`[deploy] ${step} failed: ${err instanceof Error ? err.message : err}`);
  process.exitCode = 1;
}
