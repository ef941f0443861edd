/**
 * A private redis-server on a random port (never the shared one), for tests and scripts that
 * pause, kill or restart it. With `persist`, every write is fsynced to an append-only file in
 * `dir` (`appendfsync always`), so a server started again on the same `dir` comes back with what
 * a crash would keep, and ingestion's "ack after XADD" promise holds across a kill -9.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitFor } from './wait.js';

export interface OwnRedis {
  url: string;
  port: number;
  dir: string;
  /** The running server process (replaced by `restart`). */
  readonly proc: ChildProcess;
  /** SIGTERM (or SIGKILL with `hard`), wait for the exit, start again on the same port and data. */
  restart(hard?: boolean): Promise<void>;
  /** Kills the server (SIGKILL, like a crash); the data directory is kept when `keepData`. */
  stop(keepData?: boolean): Promise<void>;
}

export interface OwnRedisOptions {
  port?: number;
  /** Data directory (a new temporary one by default). */
  dir?: string;
  persist?: boolean;
  args?: string[];
}

export async function startOwnRedis(opts: OwnRedisOptions = {}): Promise<OwnRedis> {
  const port = opts.port ?? (await freePort());
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'fleet-redis-'));
  const persist = opts.persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : [];
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, ...persist];
  args.push(...(opts.args ?? []));
  const url = `redis://127.0.0.1:${port}`;
  let proc = spawn('redis-server', args, { stdio: 'ignore' });
  const answers = async () => {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => {});
    try {
      await c.connect();
      return (await c.ping()) === 'PONG';
    } finally {
      c.disconnect();
    }
  };
  const halt = async (signal: NodeJS.Signals) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    // A paused server (SIGSTOP in a test) must run again to act on the signal.
    proc.kill('SIGCONT');
    proc.kill(signal);
    await exited;
  };
  await waitFor('redis-server to answer', answers, 30_000, 25);
  return {
    url,
    port,
    dir,
    get proc() {
      return proc;
    },
    async restart(hard = false) {
      await halt(hard ? 'SIGKILL' : 'SIGTERM');
      proc = spawn('redis-server', args, { stdio: 'ignore' });
      await waitFor('redis-server to answer', answers, 30_000, 25);
    },
    async stop(keepData = false) {
      await halt('SIGKILL');
      if (!keepData) rmSync(dir, { recursive: true, force: true });
    },
  };
}
