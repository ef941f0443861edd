/**
 * A private Redis Cluster for tests and benchmarks: `masters` × (1 + `replicasPerMaster`)
 * `redis-server --cluster-enabled yes` nodes on free ports, each with AOF and `appendfsync
 * always`, joined with `redis-cli --cluster create`. `env` is what the daemon and the extension
 * need to use it (`REDIS_CLUSTER_NODES`); `failover()` promotes a replica (CLUSTER FAILOVER on
 * it, or by killing its master with `kill: true`) and waits until the cluster is whole again.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from './wait.js';

const run = promisify(execFile);

export interface ClusterNodeProcess {
  port: number;
  dir: string;
  proc: ChildProcess;
  args: string[];
}

export interface TestRedisCluster {
  nodes: ClusterNodeProcess[];
  /** `127.0.0.1:p1,127.0.0.1:p2,…` (every node; any one would do as a seed). */
  seeds: string;
  env: { REDIS_CLUSTER_NODES: string };
  /** Ports of the current masters. */
  masters(): Promise<number[]>;
  /**
   * Makes a replica of `masterPort` (default: the first master) its master's successor and waits
   * until every slot is served again. Returns the new master's port.
   */
  failover(opts?: { masterPort?: number; kill?: boolean }): Promise<number>;
  /** Starts a killed node again on its port and data; it rejoins (as a replica) and resyncs. */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), ...args], { timeout: 30_000 });
  return stdout;
}

interface NodeLine {
  id: string;
  port: number;
  master: boolean;
  masterId: string;
  failed: boolean;
}

function parseNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id = '', addr = '', flags = '', masterId = ''] = line.split(' ');
      return {
        id,
        port: Number(addr.split('@')[0]!.split(':')[1]),
        master: flags.includes('master'),
        masterId,
        failed: flags.includes('fail'),
      };
    });
}

export async function startRedisCluster(
  opts: { masters?: number; replicasPerMaster?: number } = {},
): Promise<TestRedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 1;
  const count = masters * (1 + replicas);
  const nodes: ClusterNodeProcess[] = [];
  const stop = async () => {
    await Promise.all(
      nodes.map(async (n) => {
        if (n.proc.exitCode === null && n.proc.signalCode === null) {
          const exited = new Promise((r) => n.proc.once('exit', r));
          n.proc.kill('SIGKILL');
          await exited;
        }
        rmSync(n.dir, { recursive: true, force: true });
      }),
    );
  };
  try {
    for (let i = 0; i < count; i++) nodes.push(await startNode());
    await run(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `127.0.0.1:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      { timeout: 60_000 },
    );
    await waitWhole(nodes, masters * replicas);
  } catch (err) {
    await stop();
    throw err;
  }
  const seeds = nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  const alive = () => nodes.find((n) => n.proc.exitCode === null && n.proc.signalCode === null)!;
  const view = async () => parseNodes(await cli(alive().port, 'cluster', 'nodes'));
  return {
    nodes,
    seeds,
    env: { REDIS_CLUSTER_NODES: seeds },
    async masters() {
      return (await view()).filter((n) => n.master && !n.failed).map((n) => n.port);
    },
    async failover({ masterPort, kill = false } = {}) {
      const all = await view();
      const master = all.find((n) => n.master && !n.failed && (masterPort === undefined || n.port === masterPort));
      if (!master) throw new Error(`no master on port ${masterPort}`);
      const replica = all.find((n) => !n.master && n.masterId === master.id);
      if (!replica) throw new Error(`master ${master.port} has no replica`);
      if (kill) {
        const node = nodes.find((n) => n.port === master.port)!;
        const exited = new Promise((r) => node.proc.once('exit', r));
        node.proc.kill('SIGKILL');
        await exited;
      } else {
        await cli(replica.port, 'cluster', 'failover');
      }
      await waitFor(
        `replica ${replica.port} to take over from ${master.port}`,
        async () => (await cli(replica.port, 'role')).startsWith('master'),
        30_000,
        50,
      );
      await waitFor(
        'the cluster to serve every slot again',
        async () => /cluster_state:ok/.test(await cli(replica.port, 'cluster', 'info')),
        30_000,
        50,
      );
      return replica.port;
    },
    async restart(port) {
      const node = nodes.find((n) => n.port === port);
      if (!node) throw new Error(`no node on port ${port}`);
      node.proc = spawn('redis-server', node.args, { stdio: 'ignore' });
      await waitFor(
        `node ${port} to resync as a replica`,
        async () => /master_link_status:up/.test(await cli(port, 'info', 'replication')),
        60_000,
        100,
      );
    },
    stop,
  };
}

/**
 * Starts one node on a free port and a free bus port. The ports are only free when picked, so a
 * node that exits before answering (another process took a port meanwhile) is started again on
 * new ones. The bus port is set explicitly: Redis's default (port + 10000) does not exist for
 * ports above 55535, which the OS hands out.
 */
async function startNode(): Promise<ClusterNodeProcess> {
  let last = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    let bus = await freePort();
    while (bus === port) bus = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'fleet-redis-cluster-'));
    const args = [
      '--port',
      String(port),
      '--cluster-port',
      String(bus),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      // A dead master is noticed (and its replica promoted) within a couple of seconds.
      '--cluster-node-timeout',
      '1500',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
    ];
    const proc = spawn('redis-server', args, { stdio: 'ignore' });
    const up = await waitFor(
      'a cluster node to answer or exit',
      async () => {
        if (proc.exitCode !== null || proc.signalCode !== null) return 'exited';
        return (await cli(port, 'ping')).trim() === 'PONG' ? 'up' : false;
      },
      30_000,
      25,
    );
    if (up === 'up') return { port, dir, args, proc };
    last = `node on ports ${port}/${bus} exited with ${proc.exitCode ?? proc.signalCode}`;
    rmSync(dir, { recursive: true, force: true });
  }
  throw new Error(`no cluster node could start: ${last}`);
}

/** Waits until every node says the cluster is ok and every replica has synchronised once. */
async function waitWhole(nodes: ClusterNodeProcess[], replicas: number): Promise<void> {
  await waitFor(
    'the cluster to be ok on every node',
    async () => {
      for (const n of nodes) if (!/cluster_state:ok/.test(await cli(n.port, 'cluster', 'info'))) return false;
      return true;
    },
    60_000,
    100,
  );
  await waitFor(
    'every replica to be in sync',
    async () => {
      let synced = 0;
      for (const n of nodes) {
        const info = await cli(n.port, 'info', 'replication');
        if (/role:slave/.test(info) && /master_link_status:up/.test(info)) synced++;
      }
      return synced >= replicas;
    },
    60_000,
    100,
  );
}
