/**
 * What the benchmarks read of a process from /proc (Linux): CPU time and resident memory. CPU
 * time, unlike wall time, does not grow when other work on the machine takes the cores.
 */
import { readFileSync } from 'node:fs';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on Linux). */
const CLK_TCK = 100;

/** CPU seconds (user + system) used so far by a process. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** CPU seconds the whole machine spent busy (not idle or waiting for I/O), and its capacity, so far. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const t = line.trim().split(/\s+/).slice(1).map(Number);
  const total = t.reduce((a, b) => a + b, 0);
  // idle and iowait are the 4th and 5th fields.
  return { busy: (total - t[3]! - (t[4] ?? 0)) / CLK_TCK, total: total / CLK_TCK };
}

/**
 * CPU seconds of the PostgreSQL backends (on this host) of each application_name in `apps`, from
 * when `sample` first saw them: call it now and then, since pools open and close connections.
 */
export function backendCpuMeter(
  query: (sql: string, params: unknown[]) => Promise<{ rows: Array<{ pid: number; app: string }> }>,
  apps: readonly string[],
) {
  const seen = new Map<number, { app: string; first: number; last: number }>();
  let sampled = false;
  let unreadable = false;
  return {
    /**
     * Whether some backend listed could not be read: gone meanwhile, or PostgreSQL runs on another
     * host (then every figure is missing, not zero).
     */
    get unreadable(): boolean {
      return unreadable;
    },
    async sample(): Promise<void> {
      const r = await query(
        `SELECT pid, application_name AS app FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = ANY($1::text[])`,
        [apps],
      );
      for (const { pid, app } of r.rows) {
        let s: number;
        try {
          s = cpuSeconds(pid);
        } catch {
          unreadable = true;
          continue;
        }
        const b = seen.get(pid);
        if (b) b.last = s;
        // Opened after the first sample: all of its time counts.
        else seen.set(pid, { app, first: sampled ? 0 : s, last: s });
      }
      sampled = true;
    },
    /** CPU seconds per app since the first sample. */
    used(): Map<string, number> {
      const out = new Map(apps.map((a): [string, number] => [a, 0]));
      for (const b of seen.values()) out.set(b.app, (out.get(b.app) ?? 0) + b.last - b.first);
      return out;
    },
  };
}
