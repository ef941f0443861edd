/**
 * Private PostgreSQL and Redis servers for tests and the chaos run: they get restarted and
 * killed, which must never happen to the shared servers other people use.
 *
 * - Redis: `redis-server` on a free port, optionally with AOF (`appendfsync always`, so a write
 *   Redis confirmed survives a kill -9 and ingestion's "ack after XADD" promise holds).
 * - PostgreSQL: a throw-away cluster (`initdb` under /tmp, run as the `postgres` user when we are
 *   root) with one database `fleet`. Its schema is the real one: a clone of the test template is
 *   made in the shared cluster with the harness, dumped with pg_dump and restored here (the
 *   template itself cannot be dumped: it does not accept connections).
 */
import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createTestDatabase, freePort, TEST_PG } from '../../../test/support/index.js';

const run = promisify(execFile);
const PG_BIN = process.env.FLEET_PG_BIN ?? '/usr/lib/postgresql/15/bin';

export { freePort, type OwnRedis, startOwnRedis } from '../../../test/support/index.js';

export interface OwnPostgres {
  connection: { host: string; port: number; user: string; password: string; database: string };
  /** Stops the server (`immediate` = crash-like, `fast` = clean) and starts it again. */
  restart(mode?: 'fast' | 'immediate', downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const port = await freePort();
  const root = mkdtempSync('/tmp/fleet-pg-');
  const data = join(root, 'data');
  const asRoot = process.getuid?.() === 0;
  const pgUid = asRoot ? Number((await run('id', ['-u', 'postgres'])).stdout.trim()) : undefined;
  const pgGid = asRoot ? Number((await run('id', ['-g', 'postgres'])).stdout.trim()) : undefined;
  if (asRoot && pgUid !== undefined && pgGid !== undefined) chownSync(root, pgUid, pgGid);
  const as = (bin: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(PG_BIN, bin), ...args]) : run(join(PG_BIN, bin), args);

  await as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const startServer = () => as('pg_ctl', ['-D', data, '-o', opts, '-l', join(root, 'log'), '-w', '-t', '60', 'start']);
  await startServer();
  const connection = { host: '127.0.0.1', port, user: 'postgres', password: '', database: 'fleet' };

  // The real schema: clone the template in the shared cluster, dump it, restore it here.
  const admin = new pg.Client({ ...connection, database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE fleet');
  await admin.end();
  const clone = await createTestDatabase();
  const dump = join(root, 'schema.dump');
  try {
    const env = { ...process.env, PGPASSWORD: TEST_PG.password };
    await run(
      join(PG_BIN, 'pg_dump'),
      ['-h', TEST_PG.host, '-p', String(TEST_PG.port), '-U', TEST_PG.user, '-Fc', '-f', dump, clone.name],
      { env },
    );
    await run(join(PG_BIN, 'pg_restore'), [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'postgres',
      '-d',
      'fleet',
      '--no-owner',
      dump,
    ]);
  } finally {
    await clone.drop();
  }

  return {
    connection,
    async restart(mode = 'immediate', downMs = 0) {
      await as('pg_ctl', ['-D', data, '-m', mode, '-w', 'stop']);
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await startServer();
    },
    async stop() {
      await as('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
      rmSync(root, { recursive: true, force: true });
    },
  };
}
