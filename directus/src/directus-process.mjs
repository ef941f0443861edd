// @ts-check
/**
 * Running Directus 12.4 as a child process: its CLI (bootstrap, schema apply) and its server.
 *
 * Each process gets its own env file through CONFIG_PATH, because Directus's config file beats
 * the process environment, and a minimal process environment, so nothing from the caller's shell
 * (a stray PORT or DB_DATABASE) changes which database or port it uses.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { inspectorFile, patchSchemaInspector } from './inspector-patch.mjs';
import { DIRECTUS_DIR, directusCli, directusNode, EXTENSIONS_PATH } from './paths.mjs';

/**
 * @typedef {object} InstanceOptions
 * @property {import('./postgres.mjs').Connection} connection
 * @property {number} port
 * @property {string} secret
 * @property {string} stateDir where this instance keeps TEMP_PATH and uploads
 * @property {string} [host] default 127.0.0.1
 * @property {string} [publicUrl] default http://<host>:<port>
 * @property {{ email: string, password: string, token?: string }} [admin] used by `bootstrap` on an empty database
 * @property {string} [projectOwner] default: the admin's email
 * @property {string} [redisUrl] enables Redis for Directus's bus, locks and synchronized schedules
 * @property {string} [redisPrefix] namespaces Directus's and our Redis keys (tests share one Redis)
 * @property {string} [logLevel]
 * @property {Record<string, string | number | boolean>} [extra] any further Directus/extension variables (win)
 */

/**
 * The complete Directus configuration for one instance.
 * @param {InstanceOptions} o
 * @returns {Record<string, string | number | boolean | undefined>}
 */
export function directusInstanceEnv(o) {
  const host = o.host ?? '127.0.0.1';
  const prefix = o.redisPrefix ?? '';
  /** @type {Record<string, string | number | boolean | undefined>} */
  const env = {
    HOST: host,
    PORT: o.port,
    PUBLIC_URL: o.publicUrl ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${o.port}`,
    SECRET: o.secret,
    DB_CLIENT: 'pg',
    DB_HOST: o.connection.host,
    DB_PORT: o.connection.port,
    DB_DATABASE: o.connection.database,
    DB_USER: o.connection.user,
    DB_PASSWORD: o.connection.password || undefined,
    ADMIN_EMAIL: o.admin?.email,
    ADMIN_PASSWORD: o.admin?.password,
    ADMIN_TOKEN: o.admin?.token,
    PROJECT_NAME: 'Fleet',
    PROJECT_OWNER: o.projectOwner ?? o.admin?.email,
    // The bundle must load or Directus must refuse to start: a silently missing extension would
    // leave commands undispatched with no error anywhere.
    EXTENSIONS_PATH,
    EXTENSIONS_MUST_LOAD: true,
    // Inside node_modules by default; two instances sharing it overwrite each other's app bundle.
    TEMP_PATH: join(o.stateDir, 'tmp'),
    STORAGE_LOCATIONS: 'local',
    STORAGE_LOCAL_ROOT: join(o.stateDir, 'uploads'),
    WEBSOCKETS_ENABLED: true,
    // Requests read the one cached schema, not a deep copy each (as in .env.example and compose).
    CACHE_SCHEMA_FREEZE_ENABLED: true,
    LOG_LEVEL: o.logLevel ?? 'info',
    LOG_STYLE: 'raw',
  };
  if (o.redisUrl) {
    Object.assign(env, {
      REDIS: o.redisUrl,
      SYNCHRONIZATION_STORE: 'redis',
      SYNCHRONIZATION_NAMESPACE: `${prefix}directus-sync`,
      REDIS_BUS_NAMESPACE: `${prefix}directus:bus`,
      REDIS_LOCK_NAMESPACE: `${prefix}directus:lock`,
      CACHE_NAMESPACE: `${prefix}directus-cache`,
      FLEET_REDIS_PREFIX: prefix ? `string:${prefix}` : undefined,
    });
  } else {
    env.REDIS_ENABLED = false;
  }
  return { ...env, ...o.extra };
}

/** Creates the per-instance folders Directus expects to exist. @param {string} stateDir */
export function prepareStateDir(stateDir) {
  mkdirSync(join(stateDir, 'tmp'), { recursive: true });
  mkdirSync(join(stateDir, 'uploads'), { recursive: true });
}

/**
 * @param {string} configPath
 * @param {string} [nodeOptions] NODE_OPTIONS for the Directus process (a benchmark's profiler)
 */
function childEnv(configPath, nodeOptions) {
  /** @type {Record<string, string>} */
  const env = { CONFIG_PATH: configPath, NODE_ENV: 'production' };
  if (nodeOptions) env.NODE_OPTIONS = nodeOptions;
  for (const key of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ']) {
    const v = process.env[key];
    if (v !== undefined) env[key] = v;
  }
  return env;
}

/**
 * Spawns the Directus CLI with the env file at `configPath`; every output chunk (stdout and
 * stderr) is appended to `logFile` (if any) and handed to `onChunk`.
 * @param {string[]} args
 * @param {string} configPath
 * @param {string | undefined} logFile
 * @param {(chunk: Buffer) => void} onChunk
 * @param {string} [nodeOptions]
 */
function spawnDirectus(args, configPath, logFile, onChunk, nodeOptions) {
  const cli = directusCli();
  // Every Directus run must see the partitioned positions table (inspector-patch.mjs).
  patchSchemaInspector(inspectorFile(dirname(cli)));
  const child = spawn(directusNode(), [cli, ...args], {
    cwd: DIRECTUS_DIR,
    env: childEnv(configPath, nodeOptions),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
  /** @param {Buffer} chunk */
  const collect = (chunk) => {
    log?.write(chunk);
    onChunk(chunk);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  return { child, log };
}

/**
 * Runs a Directus CLI command to completion. Rejects with the last output lines when it fails.
 * Note: `schema apply` on a database that was never bootstrapped logs an error and exits 0, so
 * callers always bootstrap first.
 * @param {string[]} args e.g. ['bootstrap'] or ['schema', 'apply', '--yes', file]
 * @param {{ configPath: string, logFile?: string }} opts
 * @returns {Promise<string>} the combined output
 */
export function runDirectusCli(args, { configPath, logFile }) {
  return new Promise((resolve, reject) => {
    let output = '';
    const { child, log } = spawnDirectus(args, configPath, logFile, (chunk) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      log?.end();
      if (code === 0 && !/"level":(50|60)/.test(output)) resolve(output);
      else {
        const tail = output.trim().split('\n').slice(-15).join('\n');
        reject(new Error(`directus ${args.join(' ')} failed (exit ${code}):\n${tail}`));
      }
    });
  });
}

/**
 * @typedef {object} RunningDirectus
 * @property {string} url
 * @property {import('node:child_process').ChildProcess} child
 * @property {() => Promise<void>} stop SIGTERM, then SIGKILL after 10 s
 */

/**
 * Starts `directus start` and resolves once `/server/ping` answers. Rejects (after killing it) if
 * the process exits first or does not answer within `timeoutMs`.
 * @param {{ configPath: string, url: string, logFile?: string, timeoutMs?: number, onOutput?: (chunk: Buffer) => void, nodeOptions?: string }} opts
 *   `onOutput` receives stdout and stderr as they come (e.g. to show them with a prefix)
 * @returns {Promise<RunningDirectus>}
 */
export async function startDirectusServer({ configPath, url, logFile, timeoutMs = 90_000, onOutput, nodeOptions }) {
  let recent = '';
  const { child, log } = spawnDirectus(
    ['start'],
    configPath,
    logFile,
    (chunk) => {
      onOutput?.(chunk);
      recent = (recent + chunk.toString()).slice(-4000);
    },
    nodeOptions,
  );

  /** @type {Promise<number | null>} */
  const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    log?.end();
  };

  const deadline = Date.now() + timeoutMs;
  let dead = false;
  exited.then(() => {
    dead = true;
  });
  while (Date.now() < deadline && !dead) {
    try {
      const res = await fetch(`${url}/server/ping`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return { url, child, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  await stop();
  const why = dead ? `exited with code ${child.exitCode}` : `did not answer /server/ping within ${timeoutMs} ms`;
  throw new Error(
    `Directus ${why}${logFile ? ` (log: ${logFile})` : ''}:\n${recent.trim().split('\n').slice(-15).join('\n')}`,
  );
}
