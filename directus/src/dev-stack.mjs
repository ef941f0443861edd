// @ts-check
/**
 * `npm start`: the whole stack on one machine, in the foreground.
 *
 *   .env (created from .env.example with a fresh SECRET) → check PostgreSQL/PostGIS/Redis (installing
 *   PostGIS when it can, see preflight.mjs) →
 *   build the extension bundle if stale → deploy (database, PostGIS, bootstrap, schema, indexes,
 *   seed) → Directus (Node 22) + daemon (`daemon/src/cli.ts all`) with prefixed logs.
 *
 * Ctrl-C / SIGTERM stops both; if either dies, the other is stopped too.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { deploy } from './deploy.mjs';
import { startDirectusServer } from './directus-process.mjs';
import { ensureEnvFile, readEnvFile, writeEnvFile } from './env-file.mjs';
import { buildExtensionBundle, extensionBundleStale } from './extension-bundle.mjs';
import { portProblem } from './net.mjs';
import { DIRECTUS_DIR, directusNode, REPO_ROOT } from './paths.mjs';
import { connectionFromEnv } from './postgres.mjs';
import { preflight, redisPersistenceWarning } from './preflight.mjs';

export class StackError extends Error {
  /** @override */
  name = 'StackError';
}

/**
 * Directus's configuration for the dev instance: the shared `.env`, with its relative paths made
 * absolute (Directus runs in `directus/`) and per-instance folders under `directus/.tmp/`.
 * @param {Record<string, string>} env
 * @returns {Record<string, string>}
 */
export function devDirectusEnv(env) {
  /** @param {string | undefined} p @param {string} dflt */
  const abs = (p, dflt) => (p ? (isAbsolute(p) ? p : resolve(DIRECTUS_DIR, p)) : dflt);
  return {
    ...env,
    EXTENSIONS_PATH: abs(env.EXTENSIONS_PATH, join(DIRECTUS_DIR, 'extensions')),
    TEMP_PATH: abs(env.TEMP_PATH, join(DIRECTUS_DIR, '.tmp', 'directus')),
    STORAGE_LOCATIONS: env.STORAGE_LOCATIONS || 'local',
    STORAGE_LOCAL_ROOT: abs(env.STORAGE_LOCAL_ROOT, join(DIRECTUS_DIR, 'uploads')),
  };
}

/**
 * Which daemon role can run with the code present (the roles are developed separately).
 * @param {string} [root]
 * @returns {{ role: 'all' | 'ingest' | 'process', missing: string[] } | { role: null, missing: string[] }}
 */
export function daemonRole(root = REPO_ROOT) {
  const ingest = existsSync(join(root, 'daemon', 'src', 'ingestion', 'main.ts'));
  const processor = existsSync(join(root, 'daemon', 'src', 'processor', 'main.ts'));
  const missing = [
    ...(ingest ? [] : ['daemon/src/ingestion/main.ts']),
    ...(processor ? [] : ['daemon/src/processor/main.ts']),
  ];
  if (ingest && processor) return { role: 'all', missing };
  if (ingest) return { role: 'ingest', missing };
  if (processor) return { role: 'process', missing };
  return { role: null, missing };
}

/**
 * Splits a stream of chunks into lines and writes each with a prefix.
 * @param {string} prefix
 * @param {(line: string) => void} write
 */
export function lineWriter(prefix, write) {
  let partial = '';
  return (/** @type {Buffer | string} */ chunk) => {
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) write(`${prefix}${line}\n`);
  };
}

/**
 * @param {{ log?: (msg: string) => void, out?: (text: string) => void }} [opts]
 * @returns {Promise<{ stop: (reason?: string) => Promise<void>, done: Promise<number>, url: string }>}
 */
export async function startDevStack(opts = {}) {
  const log = opts.log ?? ((m) => process.stdout.write(`[start] ${m}\n`));
  const out = opts.out ?? ((t) => process.stdout.write(t));

  const envPath = join(REPO_ROOT, '.env');
  if (ensureEnvFile(envPath, join(REPO_ROOT, '.env.example'))) log('created .env from .env.example with a new SECRET');
  const env = readEnvFile(envPath);
  const connection = connectionFromEnv(env);
  const redisUrl = env.REDIS || 'redis://127.0.0.1:6379';

  const problems = await preflight({ connection, redisUrl, needs: ['postgis'], log });
  if (problems.length === 0) {
    const durability = await redisPersistenceWarning(redisUrl);
    if (durability) log(`WARNING: ${durability}`);
  }
  const { role } = daemonRole();
  const ports = [{ what: 'Directus', host: env.HOST || '0.0.0.0', port: Number(env.PORT || 8055), variable: 'PORT' }];
  if (role && role !== 'process') {
    ports.push({
      what: 'device ingestion',
      host: env.INGEST_HOST || '0.0.0.0',
      port: Number(env.INGEST_PORT || 5027),
      variable: 'INGEST_PORT',
    });
  }
  for (const p of ports) {
    const code = await portProblem(p.host, p.port);
    if (code) {
      problems.push(
        `Port ${p.port} (${p.what}) on ${p.host} is not available (${code}): is Fleet already running? Stop it, or set ${p.variable} in .env.`,
      );
    }
  }
  if (problems.length) throw new StackError(problems.join('\n'));
  directusNode(); // throws a readable error when Node 22 is missing

  if (extensionBundleStale()) {
    log('building the extension bundle (npm run build -w extensions)');
    buildExtensionBundle();
  }

  const stateDir = join(DIRECTUS_DIR, '.tmp');
  mkdirSync(stateDir, { recursive: true });
  const admin = { email: env.ADMIN_EMAIL || 'admin@example.com', password: env.ADMIN_PASSWORD || 'admin' };
  await deploy({
    connection,
    admin: env.ADMIN_TOKEN ? { ...admin, token: env.ADMIN_TOKEN } : admin,
    stateDir: join(stateDir, 'deploy'),
    projectOwner: env.PROJECT_OWNER || admin.email,
    log: (m) => log(`deploy: ${m}`),
  });

  const directusEnv = devDirectusEnv(env);
  mkdirSync(directusEnv.STORAGE_LOCAL_ROOT ?? join(DIRECTUS_DIR, 'uploads'), { recursive: true });
  const configPath = join(stateDir, 'directus.env');
  writeEnvFile(configPath, directusEnv);
  const url = `http://127.0.0.1:${env.PORT || 8055}`;
  log(`starting Directus on ${env.PUBLIC_URL || url}`);
  const directus = await startDirectusServer({
    configPath,
    url,
    onOutput: lineWriter('[directus] ', out),
    timeoutMs: 180_000,
  });

  /** @type {import('node:child_process').ChildProcess | undefined} */
  let daemon;
  const { missing } = daemonRole();
  if (role) {
    log(`starting the daemon (${role})`);
    daemon = spawn(
      process.execPath,
      [join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'daemon/src/cli.ts', role],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    daemon.stdout?.on('data', lineWriter('[daemon]   ', out));
    daemon.stderr?.on('data', lineWriter('[daemon]   ', out));
  }
  if (missing.length)
    log(`daemon: not there yet (${missing.join(', ')}); ${role ? 'running the rest' : 'not started'}`);

  let stopping = false;
  /** @type {(code: number) => void} */
  let finish = () => {};
  /** @type {Promise<number>} */
  const done = new Promise((r) => {
    finish = r;
  });
  /** @param {string} [reason] */
  const stop = async (reason) => {
    if (stopping) return;
    stopping = true;
    if (reason) log(`stopping (${reason})`);
    const daemonExit = daemon && daemon.exitCode === null ? new Promise((r) => daemon?.once('exit', r)) : undefined;
    daemon?.kill('SIGTERM');
    const timer = setTimeout(() => daemon?.kill('SIGKILL'), 15_000);
    await Promise.all([directus.stop(), daemonExit]);
    clearTimeout(timer);
    log('stopped');
  };
  directus.child.once('exit', (code) => {
    if (!stopping) stop(`Directus exited with code ${code}`).then(() => finish(1));
  });
  daemon?.once('exit', (code) => {
    if (!stopping) stop(`the daemon exited with code ${code}`).then(() => finish(1));
  });

  const shown = env.PUBLIC_URL || url;
  log('');
  log(`Fleet is running: ${shown}  (log in as ${admin.email} / ${admin.password})`);
  if (admin.password === 'admin') {
    log('WARNING: the admin password is the default "admin": change it in the Studio (user menu > My profile).');
  }
  if (role) log(`Devices connect to TCP/UDP port ${env.INGEST_PORT || 5027}. Ctrl-C stops everything.`);
  log('');
  return {
    url: shown,
    done,
    stop: async (reason) => {
      await stop(reason);
      finish(0);
    },
  };
}
