/**
 * A real Directus 12.4 for tests, on a free port, with the extension bundle from `extensions/`
 * loaded (EXTENSIONS_MUST_LOAD=true: a bundle that fails to load fails the start).
 *
 *   const db = await createTestDatabase();
 *   const d = await startDirectus({ database: db });          // ~4-8 s
 *   await fetch(`${d.url}/items/devices`, { headers: { authorization: `Bearer ${d.adminToken}` } });
 *   const token = await d.login('admin@example.com', TEST_ADMIN.password);   // access token of any user
 *   await d.stop();                                          // in afterAll, before db.drop()
 *
 * Options: `redisPrefix` (default: a fresh random prefix, whose keys stop() deletes; a prefix you
 * pass, e.g. from createTestRedis(), is left to its owner's cleanup(); Directus's bus/locks/sync keys
 * and the extension's FLEET_REDIS_PREFIX all use it; `false` runs Directus without Redis), `env` (extra
 * Directus/extension variables, override everything). Each instance has its own TEMP_PATH,
 * uploads and CONFIG_PATH under a temp folder; its log is `logFile` (kept when start fails).
 * Processes still running when the test process exits are killed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import {
  directusInstanceEnv,
  prepareStateDir,
  type RunningDirectus,
  startDirectusServer,
} from '../../directus/src/directus-process.mjs';
import { generateSecret, writeEnvFile } from '../../directus/src/env-file.mjs';
import { freePort } from '../../directus/src/net.mjs';
import type { Connection } from '../../directus/src/postgres.mjs';
import { TEST_ADMIN, TEST_REDIS_URL } from './constants.js';
import { deleteKeysWithPrefix, newRedisPrefix } from './redis.js';

export interface StartDirectusOptions {
  database: { connection: Connection };
  redisPrefix?: string | false;
  env?: Record<string, string | number | boolean>;
  /** Milliseconds to wait for /server/ping (default 90 s). */
  timeoutMs?: number;
  /** NODE_OPTIONS for the server process (e.g. a benchmark's profiler preload). */
  nodeOptions?: string;
}

export interface TestDirectus {
  url: string;
  port: number;
  adminToken: string;
  adminEmail: string;
  adminPassword: string;
  /** Prefix of the Redis keys of this instance and its extension, or false when started without Redis. */
  redisPrefix: string | false;
  logFile: string;
  /** The server's process id (benchmarks read its CPU time). */
  pid: number;
  /** Logs in with email/password and returns the access token. */
  login(email: string, password: string): Promise<string>;
  stop(): Promise<void>;
}

const running = new Set<RunningDirectus>();
process.once('exit', () => {
  for (const r of running) r.child.kill('SIGKILL');
});

export async function startDirectus(opts: StartDirectusOptions): Promise<TestDirectus> {
  const stateDir = mkdtempSync(join(tmpdir(), 'fleet-directus-'));
  prepareStateDir(stateDir);
  const port = await freePort();
  const redisPrefix = opts.redisPrefix === false ? false : (opts.redisPrefix ?? newRedisPrefix());
  const configPath = join(stateDir, 'directus.env');
  const logFile = join(stateDir, 'directus.log');
  writeEnvFile(
    configPath,
    directusInstanceEnv({
      connection: opts.database.connection,
      port,
      secret: generateSecret(),
      stateDir,
      admin: TEST_ADMIN,
      redisUrl: redisPrefix === false ? undefined : TEST_REDIS_URL,
      redisPrefix: redisPrefix === false ? undefined : redisPrefix,
      // Directus sheds load with a 503 when its event loop lags over 500 ms; tests share a loaded
      // 2-core machine and assert on every answer, so the test instances never shed (production does).
      extra: { TELEMETRY: false, PRESSURE_LIMITER_ENABLED: false, ...opts.env },
    }),
  );
  const server = await startDirectusServer({
    configPath,
    url: `http://127.0.0.1:${port}`,
    logFile,
    timeoutMs: opts.timeoutMs,
    nodeOptions: opts.nodeOptions,
  });
  running.add(server);

  return {
    url: server.url,
    port,
    adminToken: TEST_ADMIN.token,
    adminEmail: TEST_ADMIN.email,
    adminPassword: TEST_ADMIN.password,
    redisPrefix,
    logFile,
    pid: server.child.pid as number,
    async login(email, password) {
      const res = await fetch(`${server.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password }),
      });
      if (!res.ok) throw new Error(`login ${email} → ${res.status}: ${await res.text()}`);
      const body = (await res.json()) as { data: { access_token: string } };
      return body.data.access_token;
    },
    async stop() {
      await server.stop();
      running.delete(server);
      // Only a prefix this instance made up is cleared: a caller's prefix (from createTestRedis)
      // may hold streams the test still inspects, e.g. across a Directus restart.
      if (redisPrefix !== false && opts.redisPrefix === undefined) {
        const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true });
        try {
          await redis.connect();
          await deleteKeysWithPrefix(redis, redisPrefix);
        } finally {
          redis.disconnect();
        }
      }
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
