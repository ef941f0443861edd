// @ts-check
/**
 * Checks what the stack needs before anything starts, so a missing PostgreSQL, PostGIS, Redis or
 * Chromium gives one sentence saying what to install or start instead of a stack trace.
 *
 * The system packages `npm start` and `npm test` need beyond npm's (PostGIS for the running
 * PostgreSQL; Chromium for the browser tests) are installed here when that is safe: as root, on
 * Debian/Ubuntu, with apt-get, for a PostgreSQL server on this machine, unless
 * FLEET_NO_SYSTEM_INSTALL=1. Otherwise the preflight stops with the exact command to run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { checkPostgres, postgresFacts } from './postgres.mjs';

/** The variable that turns the automatic system-package install off. */
export const NO_SYSTEM_INSTALL = 'FLEET_NO_SYSTEM_INSTALL';

/**
 * The Chromium the browser tests drive (playwright-core with the system browser).
 * @param {Record<string, string | undefined>} [env]
 */
export function chromiumPath(env = process.env) {
  return env.CHROMIUM_PATH || '/usr/bin/chromium';
}

/**
 * Programs the tests run from the system (a real load balancer in front of ingestion, the
 * browser), each with its Debian package and the variable that points elsewhere.
 */
const PROGRAMS = {
  chromium: { pkg: 'chromium', envVar: 'CHROMIUM_PATH', path: chromiumPath, one: 'a Chromium', label: 'Chromium' },
  haproxy: {
    pkg: 'haproxy',
    envVar: 'HAPROXY_PATH',
    /** @param {Record<string, string | undefined>} env */
    path: (env) => env.HAPROXY_PATH || '/usr/sbin/haproxy',
    one: 'an HAProxy',
    label: 'HAProxy',
  },
};

/**
 * @typedef {'postgis' | 'chromium' | 'haproxy'} Need
 * @typedef {{ need: 'postgis', major: number, localServer: boolean, debianServer: boolean }
 *   | { need: 'chromium' | 'haproxy', customPath: string | null }} Missing
 *   what is absent, with what decides how to get it (`debianServer`: the server is the distribution's
 *   package, /usr/lib/postgresql/<major>, so the matching PostGIS package fits it)
 * @typedef {object} SystemFacts
 * @property {boolean} root
 * @property {boolean} debianLike /etc/os-release says Debian or Ubuntu (or a derivative)
 * @property {boolean} apt apt-get is on PATH
 * @property {boolean} optOut FLEET_NO_SYSTEM_INSTALL is set
 * @typedef {object} InstallPlan
 * @property {string[]} install packages to install now (empty when nothing can or needs to be)
 * @property {{ needs: Need[], say: string }[]} manual what the user must do instead, in words
 *   with the exact command
 */

/**
 * The apt-get command line for some packages, as a user would type it.
 * @param {string[]} packages
 * @param {boolean} root
 */
export function aptCommand(packages, root) {
  const sudo = root ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y ${packages.join(' ')}`;
}

/**
 * Decides what to install and what to ask for, from what is missing and what this machine is.
 * Pure: every fact comes in as an argument.
 * @param {Missing[]} missing
 * @param {SystemFacts} sys
 * @returns {InstallPlan}
 */
export function planSystemInstall(missing, sys) {
  /** @type {{ need: Need, pkg: string }[]} */
  const aptable = [];
  /** @type {InstallPlan['manual']} */
  const manual = [];
  for (const m of missing) {
    if (m.need === 'postgis') {
      if (!m.localServer) {
        manual.push({
          needs: ['postgis'],
          say: `install PostGIS 3 on the PostgreSQL ${m.major} server (it is not on this machine)`,
        });
      } else if (!sys.debianLike || !m.debianServer) {
        manual.push({
          needs: ['postgis'],
          say: `install PostGIS 3 for PostgreSQL ${m.major} with your system's package manager (macOS: \`brew install postgis\`)`,
        });
      } else aptable.push({ need: 'postgis', pkg: `postgresql-${m.major}-postgis-3` });
    } else {
      const p = PROGRAMS[m.need];
      if (m.customPath) {
        manual.push({
          needs: [m.need],
          say: `${p.envVar}=${m.customPath} does not exist: point it at ${p.one} or unset it`,
        });
      } else if (!sys.debianLike) {
        manual.push({ needs: [m.need], say: `install ${p.label} and set ${p.envVar} to its executable` });
      } else aptable.push({ need: m.need, pkg: p.pkg });
    }
  }
  if (!aptable.length) return { install: [], manual };
  const packages = aptable.map((a) => a.pkg);
  if (sys.root && sys.apt && !sys.optOut) return { install: packages, manual };
  const why = sys.optOut ? `${NO_SYSTEM_INSTALL} is set` : !sys.root ? 'not running as root' : 'apt-get not found';
  manual.push({ needs: aptable.map((a) => a.need), say: `run \`${aptCommand(packages, sys.root)}\` (${why})` });
  return { install: [], manual };
}

/**
 * This machine's facts for planSystemInstall.
 * @param {Record<string, string | undefined>} [env]
 * @returns {SystemFacts}
 */
export function systemFacts(env = process.env) {
  let osRelease = '';
  try {
    osRelease = readFileSync('/etc/os-release', 'utf8');
  } catch {}
  const ids = [...osRelease.matchAll(/^(?:ID|ID_LIKE)="?([^"\n]*)"?$/gm)].flatMap((m) => (m[1] ?? '').split(/\s+/));
  return {
    root: process.getuid?.() === 0,
    debianLike: ids.includes('debian') || ids.includes('ubuntu'),
    apt: spawnSync('sh', ['-c', 'command -v apt-get'], { stdio: 'ignore' }).status === 0,
    optOut: Boolean(env[NO_SYSTEM_INSTALL]) && env[NO_SYSTEM_INSTALL] !== '0',
  };
}

/** @param {string} host */
function isLocalHost(host) {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host.startsWith('/');
}

/**
 * What of `needs` is missing on this machine (PostGIS only when the server is reachable: an
 * unreachable server is reported by checkPostgres).
 * @param {Need[]} needs
 * @param {import('./postgres.mjs').Connection} connection
 * @param {Record<string, string | undefined>} env
 * @returns {Promise<Missing[]>}
 */
export async function findMissing(needs, connection, env) {
  /** @type {Missing[]} */
  const missing = [];
  if (needs.includes('postgis')) {
    const pg = await postgresFacts(connection);
    if (pg.reachable && !pg.postgis) {
      missing.push({
        need: 'postgis',
        major: pg.major,
        localServer: isLocalHost(connection.host),
        debianServer: existsSync(`/usr/lib/postgresql/${pg.major}/bin`),
      });
    }
  }
  for (const need of /** @type {const} */ (['chromium', 'haproxy'])) {
    const p = PROGRAMS[need];
    if (needs.includes(need) && !existsSync(p.path(env))) missing.push({ need, customPath: env[p.envVar] || null });
  }
  return missing;
}

/**
 * Installs with apt-get, output shown. Returns null on success, else why it failed.
 * @param {string[]} packages
 * @returns {string | null}
 */
export function aptInstall(packages) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update'], ['install', '-y', ...packages]]) {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'inherit', 'inherit'], env });
    if (r.status !== 0) return `\`apt-get ${args.join(' ')}\` failed (${r.error?.message ?? `exit code ${r.status}`})`;
  }
  return null;
}

/**
 * Makes the system packages in `needs` present where it can (see the file header). Returns what
 * is still missing as sentences with the exact command to run (empty when everything is there).
 * @param {{ needs: Need[], connection: import('./postgres.mjs').Connection,
 *   env?: Record<string, string | undefined>, log?: (msg: string) => void, sys?: SystemFacts }} opts
 * @returns {Promise<string[]>}
 */
export async function ensureSystemPackages({ needs, connection, env = process.env, log = console.log, sys }) {
  const missing = await findMissing(needs, connection, env);
  if (!missing.length) return [];
  const plan = planSystemInstall(missing, sys ?? systemFacts(env));
  const problems = plan.manual.map((m) => `${m.needs.map(describeNeed).join(' and ')} missing: ${m.say}.`);
  if (plan.install.length) {
    log(`installing ${plan.install.join(' ')} with apt-get (set ${NO_SYSTEM_INSTALL}=1 to do it yourself instead)`);
    const failed = aptInstall(plan.install);
    if (failed) problems.push(`Installing ${plan.install.join(' ')} failed: ${failed}.`);
    else {
      const still = await findMissing(needs, connection, env);
      for (const m of still)
        problems.push(`${describeNeed(m.need)} still missing after installing ${plan.install.join(' ')}.`);
      if (!still.length) log(`installed ${plan.install.join(' ')}`);
    }
  }
  return problems;
}

/** @param {Need} need */
function describeNeed(need) {
  if (need === 'postgis') return 'PostGIS';
  return need === 'chromium' ? 'Chromium (for the browser tests)' : 'HAProxy (for the load-balancer tests)';
}

/**
 * A client for one look at Redis: it connects when asked, fails at once instead of retrying, and
 * its errors are answered by the caller (not thrown as unhandled 'error' events).
 * @param {string} url
 * @param {import('ioredis').RedisOptions} [extra]
 */
function probeClient(url, extra = {}) {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    ...extra,
  });
  redis.on('error', () => {});
  return redis;
}

/**
 * @param {string} url
 * @returns {Promise<string[]>}
 */
export async function checkRedis(url) {
  const redis = probeClient(url, { enableOfflineQueue: false });
  try {
    await redis.connect();
    const info = await redis.info('server');
    const version = /redis_version:(\d+)/.exec(info)?.[1];
    if (version && Number(version) < 7) return [`Redis at ${url} is version ${version}: Redis >= 7 is needed.`];
    return [];
  } catch (err) {
    return [
      `Redis is not reachable at ${url} (${/** @type {Error} */ (err).message}). ` +
        'Install and start Redis >= 7 (Debian/Ubuntu: `apt-get install redis-server`), or set REDIS in .env.',
    ];
  } finally {
    redis.disconnect();
  }
}

/**
 * Redis holds the only copy of acknowledged, not yet processed frames. Without AOF or RDB
 * snapshots a Redis restart loses them all; with `appendfsync everysec` a host crash loses about
 * the last second. Returns a sentence to show, or null when every write is fsynced.
 * @param {string} url
 * @returns {Promise<string | null>}
 */
export async function redisPersistenceWarning(url) {
  const redis = probeClient(url);
  try {
    await redis.connect();
    const [, aof] = /** @type {[string, string]} */ (await redis.config('GET', 'appendonly'));
    const [, fsync] = /** @type {[string, string]} */ (await redis.config('GET', 'appendfsync'));
    const [, save] = /** @type {[string, string]} */ (await redis.config('GET', 'save'));
    if (aof === 'yes' && fsync === 'always') return null;
    if (aof === 'yes') {
      return `Redis at ${url} fsyncs its append-only file "${fsync}": a host crash can lose about the last second of acknowledged device data. Use appendfsync always (see docker-compose.yml).`;
    }
    return `Redis at ${url} has no append-only file${save ? ` (only snapshots: "${save}")` : ' and no snapshots'}: a Redis restart loses acknowledged device data not yet written to PostgreSQL. Start it with --appendonly yes --appendfsync always.`;
  } catch {
    // CONFIG may be disabled (managed Redis): nothing we can say.
    return null;
  } finally {
    redis.disconnect();
  }
}

/**
 * Everything `npm start` (needs: postgis) and `npm test` (needs: postgis, chromium) check first:
 * installs what it can, then reports what is still wrong.
 * @param {{ connection: import('./postgres.mjs').Connection, redisUrl: string, needs?: Need[],
 *   env?: Record<string, string | undefined>, log?: (msg: string) => void }} opts
 * @returns {Promise<string[]>} problems, empty when everything is there
 */
export async function preflight({ connection, redisUrl, needs = ['postgis'], env = process.env, log }) {
  const system = await ensureSystemPackages({ needs, connection, env, log });
  const [pg, redis] = await Promise.all([
    // A missing PostGIS is already in `system`, with this machine's command.
    checkPostgres(connection, { postgis: !needs.includes('postgis') }),
    checkRedis(redisUrl),
  ]);
  return [...system, ...pg, ...redis];
}
