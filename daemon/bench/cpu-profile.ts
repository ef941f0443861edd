/**
 * Where a bench child's CPU time goes: a V8 CPU profile (inspector, started and stopped around one
 * phase) folded into a few named parts of the ingestion path, plus garbage-collection pauses seen
 * by a PerformanceObserver over the same window. Used by ingest-server.ts; printed by ingest.ts.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuBreakdown {
  /** Samples per part, busy time only (idle excluded), largest first. */
  parts: Array<[string, number]>;
  /** Busiest functions by self time: "name (file:line)", samples. */
  top: Array<[string, number]>;
  /** Busy samples, and all samples (idle included) of the profiled window. */
  busy: number;
  samples: number;
  wallMs: number;
  gc: { count: number; totalMs: number; maxMs: number; majorCount: number; majorMs: number; majorMaxMs: number };
  /** Bytes allocated on the JS heap (sampled, collected objects included) per part, largest first. */
  alloc: Array<[string, number]>;
  /** Busiest allocation sites: "name (file:line)", bytes. */
  allocTop: Array<[string, number]>;
  /** Frames acknowledged in the window (set by the caller), to print allocation per frame. */
  frames?: number;
  /** The longest stretches of loop work, about one turn each (see longestStalls): length, start, what ran. */
  stalls: Stall[];
}

export interface Stall {
  ms: number;
  /** Seconds after the profile's start. */
  atS: number;
  /** What ran, by activity (see activityOf), ms, largest first. */
  parts: Array<[string, number]>;
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

const NODE_PARTS = new Set(['other node internals', 'socket I/O (node net/streams)', 'timers, promises, ticks']);

/**
 * Folds a sampling heap profile: each allocation goes to the innermost frame of the stack that is
 * not node's own code or native (an allocation inside Buffer.concat called by ioredis is ioredis').
 */
export function foldHeapProfile(head: HeapNode): Pick<CpuBreakdown, 'alloc' | 'allocTop'> {
  const parts = new Map<string, number>();
  const sites = new Map<string, number>();
  const walk = (n: HeapNode, owner: string | null) => {
    const part = partOf(n.callFrame.functionName, n.callFrame.url);
    const ours = part !== null && !NODE_PARTS.has(part) && !part.startsWith('native') && !part.startsWith('V8');
    const here = ours ? part : (owner ?? part ?? 'other');
    if (n.selfSize > 0) {
      parts.set(here, (parts.get(here) ?? 0) + n.selfSize);
      const file = n.callFrame.url.replace(/^.*\/(node_modules\/)?/, '');
      const name = `${n.callFrame.functionName || '(anonymous)'} (${file || 'native'}${file ? `:${n.callFrame.lineNumber + 1}` : ''})`;
      sites.set(name, (sites.get(name) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, ours ? part : owner);
  };
  walk(head, null);
  const sort = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { alloc: sort(parts), allocTop: sort(sites).slice(0, Number(process.env.BENCH_TOP ?? 8)) };
}

/** The part of the path a profile node's own time belongs to. */
export function partOf(functionName: string, url: string): string | null {
  if (functionName === '(idle)') return null;
  if (functionName === '(garbage collector)') return 'garbage collection';
  if (functionName === '(program)') return 'V8/native (program)';
  if (/ioredis|redis-parser|denque|cluster-key-slot/.test(url)) return 'ioredis (commands, replies)';
  if (/prom-client/.test(url)) return 'metrics (prom-client)';
  if (/pino|sonic-boom/.test(url)) return 'logging (pino)';
  if (/\/ingestion\/stream-writer/.test(url)) return 'stream writer (batching)';
  if (/\/ingestion\//.test(url)) return 'session (per-socket queue, timers)';
  if (/\/protocol\//.test(url)) return 'framing + CRC';
  if (/\/contract\//.test(url)) return 'entry encoding';
  if (/node:(net|stream|internal\/stream|internal\/net|internal\/streams|_stream)/.test(url))
    return 'socket I/O (node net/streams)';
  if (/node:internal\/(timers|process\/task_queues|process\/promises)|node:timers/.test(url))
    return 'timers, promises, ticks';
  if (url.startsWith('node:')) return 'other node internals';
  if (url === '') return `native: ${functionName || '(anonymous)'}`;
  return 'other JS';
}

/** Folds a profile's self times into parts (native functions under 2% are merged). */
export function foldProfile(nodes: ProfileNode[]): Pick<CpuBreakdown, 'parts' | 'top' | 'busy' | 'samples'> {
  const parts = new Map<string, number>();
  const fns = new Map<string, number>();
  let busy = 0;
  let samples = 0;
  for (const n of nodes) {
    const ms = n.hitCount ?? 0;
    samples += ms;
    if (!ms) continue;
    const part = partOf(n.callFrame.functionName, n.callFrame.url);
    if (part === null) continue;
    busy += ms;
    parts.set(part, (parts.get(part) ?? 0) + ms);
    const file = n.callFrame.url.replace(/^.*\/(node_modules\/)?/, '');
    const name = `${n.callFrame.functionName || '(anonymous)'} (${file || 'native'}${file ? `:${n.callFrame.lineNumber + 1}` : ''})`;
    fns.set(name, (fns.get(name) ?? 0) + ms);
  }
  const merged = new Map<string, number>();
  for (const [p, ms] of parts) {
    const key = p.startsWith('native: ') && ms < busy * 0.02 ? 'native: other' : p;
    merged.set(key, (merged.get(key) ?? 0) + ms);
  }
  const sort = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { parts: sort(merged), top: sort(fns).slice(0, Number(process.env.BENCH_TOP ?? 8)), busy, samples };
}

/**
 * What a sample was doing, named by the functions of ours on its stack (a socket write under a
 * session's `written` is an ack; under the writer's `flush` or `issue`, an XADD batch): what the
 * loop was busy with, which the self time alone (`writeBuffer`) does not say.
 */
function activityOf(stack: ProfileNode[]): string {
  const self = stack[0] as ProfileNode;
  if (self.callFrame.functionName === '(garbage collector)') return 'garbage collection';
  const ours = new Set<string>();
  let redis = false;
  for (const { callFrame: f } of stack) {
    if (/\/ingestion\/(stream-writer|session)/.test(f.url)) ours.add(f.functionName);
    else if (/ioredis|redis-parser/.test(f.url)) redis = true;
  }
  if (ours.has('written') || ours.has('failed') || ours.has('tell')) return 'replies told, acks written';
  if (ours.has('flush') || ours.has('send') || ours.has('issue')) return 'XADD batches sent';
  if (ours.has('onData')) return 'socket reads (framing, CRC, entries)';
  if (redis) return 'ioredis (commands, replies)';
  return partOf(self.callFrame.functionName, self.callFrame.url) ?? 'idle';
}

/**
 * The `count` longest runs of consecutive busy samples, cut at idle samples and where a check
 * phase ends (about one loop turn each: what held timers back), each with what ran in it.
 */
export function longestStalls(p: Profile, count = 3): Stall[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
  const stackOf = (id: number): ProfileNode[] => {
    const out: ProfileNode[] = [];
    for (let n = byId.get(id); n && n.callFrame.functionName !== '(root)'; n = parent.get(n.id)) out.push(n);
    return out;
  };
  const at: number[] = [];
  let t = p.startTime;
  for (const d of p.timeDeltas) {
    t += d;
    at.push(t);
  }
  // A turn of the loop ends with its check phase (setImmediate callbacks: the writer's flush),
  // after which timers run again; a loop that never waits for I/O has no idle sample between
  // turns, so a run is also cut where a check phase ends.
  const inCheck = (id: number) => stackOf(id).at(-1)?.callFrame.functionName === 'processImmediate';
  const runs: Array<[number, number]> = [];
  let from = -1;
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    const idle = byId.get(id)?.callFrame.functionName === '(idle)';
    const turnEnded = i > 0 && !idle && inCheck(p.samples[i - 1] as number) && !inCheck(id);
    if (from >= 0 && (idle || turnEnded)) {
      runs.push([from, i]);
      from = -1;
    }
    if (!idle && from < 0) from = i;
  }
  const ms = ([a, b]: [number, number]) => ((at[b] as number) - (at[a] as number)) / 1000;
  return runs
    .sort((x, y) => ms(y) - ms(x))
    .slice(0, count)
    .map(([a, b]) => {
      const parts = new Map<string, number>();
      for (let i = a; i < b; i++) {
        const what = activityOf(stackOf(p.samples[i] as number));
        parts.set(what, (parts.get(what) ?? 0) + ((at[i + 1] as number) - (at[i] as number)) / 1000);
      }
      return {
        ms: ms([a, b]),
        atS: ((at[a] as number) - p.startTime) / 1e6,
        parts: [...parts.entries()].sort((x, y) => y[1] - x[1]),
      };
    });
}

/** Starts profiling this process; the returned function stops and folds. */
export async function startCpuProfile(): Promise<() => Promise<CpuBreakdown>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 500 });
  await session.post('Profiler.start');
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 8192,
    // Everything allocated in the window, not only what is still alive at its end.
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  } as object);
  const gc = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0, majorMaxMs: 0 };
  const count = (entries: PerformanceEntry[]) => {
    for (const e of entries) {
      gc.count++;
      gc.totalMs += e.duration;
      gc.maxMs = Math.max(gc.maxMs, e.duration);
      // NODE_PERFORMANCE_GC_MAJOR = 4
      if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === 4) {
        gc.majorCount++;
        gc.majorMs += e.duration;
        gc.majorMaxMs = Math.max(gc.majorMaxMs, e.duration);
      }
    }
  };
  const obs = new PerformanceObserver((list) => count(list.getEntries()));
  obs.observe({ entryTypes: ['gc'] });
  const t0 = performance.now();
  return async () => {
    const { profile } = (await session.post('Profiler.stop')) as { profile: Profile };
    const heap = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: HeapNode } };
    // Entries not yet delivered (a busy loop delivers them late) belong to the window too.
    count(obs.takeRecords());
    obs.disconnect();
    session.disconnect();
    const dir = process.env.BENCH_PROFILE_DIR;
    if (dir) {
      // For a closer look (Chrome DevTools, speedscope): the raw profiles of the window.
      writeFileSync(join(dir, `ingest-${process.pid}.cpuprofile`), JSON.stringify(profile));
      writeFileSync(join(dir, `ingest-${process.pid}.heapprofile`), JSON.stringify(heap.profile));
    }
    return {
      ...foldProfile(profile.nodes),
      ...foldHeapProfile(heap.profile.head),
      wallMs: performance.now() - t0,
      gc,
      stalls: longestStalls(profile),
    };
  };
}

/** One line per part plus the top functions, for the bench log. */
export function formatBreakdown(b: CpuBreakdown, indent = '    '): string {
  // Shares of the profiled wall time (samples are taken at a fixed interval, idle ones included).
  const pct = (n: number) => `${((n / Math.max(1, b.samples)) * 100).toFixed(1)}%`;
  const parts = b.parts.map(([p, n]) => `${p} ${pct(n)}`).join(', ');
  const top = b.top.map(([f, n]) => `${f} ${pct(n)}`).join('; ');
  return (
    `${indent}CPU, share of the daemon's wall time over ${(b.wallMs / 1000).toFixed(1)} s (busy ${pct(b.busy)}, idle ${pct(b.samples - b.busy)}): ${parts}\n` +
    `${indent}GC: ${b.gc.count} pauses, ${b.gc.totalMs.toFixed(0)} ms total, max ${b.gc.maxMs.toFixed(1)} ms ` +
    `(${b.gc.majorCount} major, ${b.gc.majorMs.toFixed(0)} ms, max ${b.gc.majorMaxMs.toFixed(1)} ms)\n` +
    `${indent}busiest functions (self time): ${top}\n` +
    `${indent}longest loop turns (busy samples up to an idle one or the end of a check phase): ${b.stalls.map(stallText).join('; ')}\n` +
    allocLine(b, indent)
  );
}

function stallText(s: Stall): string {
  const what = s.parts
    .filter(([, ms]) => ms >= 0.5)
    .map(([p, ms]) => `${p} ${ms.toFixed(1)}`)
    .join(', ');
  return `${s.ms.toFixed(1)} ms at +${s.atS.toFixed(1)} s (${what})`;
}

function allocLine(b: CpuBreakdown, indent: string): string {
  const total = b.alloc.reduce((n, [, v]) => n + v, 0);
  const per = b.frames ? b.frames : 1;
  const unit = b.frames ? 'per frame' : 'total';
  const kib = (n: number) => `${(n / per / 1024).toFixed(1)} KiB`;
  const parts = b.alloc
    .filter(([, v]) => v >= total * 0.01)
    .map(([p, v]) => `${p} ${kib(v)}`)
    .join(', ');
  const sites = b.allocTop.map(([f, v]) => `${f} ${kib(v)}`).join('; ');
  return (
    `${indent}JS heap allocated ${unit}${b.frames ? ` (${b.frames} frames)` : ''}: ${kib(total)}: ${parts}\n` +
    `${indent}largest allocation sites ${unit}: ${sites}`
  );
}
