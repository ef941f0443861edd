/**
 * A daemon role as deployed: `daemon/src/cli.ts <role>` in a process of its own (so its
 * HISTORY_NICE and its own event loop apply), resolved once it logs its start-up line. The role
 * must log at `info` for that line; afterwards only its warnings and errors are shown.
 */
import { type ChildProcess, spawn } from 'node:child_process';

export interface DaemonRole {
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

const ROOT = new URL('../../', import.meta.url).pathname;

export function startDaemonRole(role: string, env: NodeJS.ProcessEnv, readyLine: string): Promise<DaemonRole> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'daemon/src/cli.ts', role], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const handle: DaemonRole = {
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  return new Promise<DaemonRole>((resolve, reject) => {
    let up = false;
    child.once('exit', (code) => {
      if (!up) reject(new Error(`${role} exited with ${code}`));
    });
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) {
        if (!up && line.includes(readyLine)) {
          up = true;
          resolve(handle);
        } else if (up && /"level":(4|5|6)0/.test(line)) process.stderr.write(`${role}: ${line}\n`);
      }
    });
  });
}
