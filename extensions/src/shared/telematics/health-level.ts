/**
 * Warning level of the pipeline health panel. Kept apart from health.ts because the panel runs in
 * the browser and must not import the Redis contract (it uses Node's Buffer).
 */
export interface HealthFigures {
  telemetryBacklog: number;
  deadLetters: { total: number };
  instances: readonly unknown[];
}

export interface HealthThresholds {
  /** Backlog (lag + pending on telemetry:avl) from which the panel turns amber. */
  lagWarning: number;
  /** Backlog from which it turns red; 10x the warning when unset. */
  lagCritical?: number;
  /** Dead letters from which it turns amber; 1 when unset. */
  deadLetterWarning?: number;
}

export type HealthLevel = 'ok' | 'warning' | 'critical';

/** Warning level for the panel: the canary and dead letters against the thresholds set in its options. */
export function healthLevel(h: HealthFigures, opts: HealthThresholds): HealthLevel {
  const critical = opts.lagCritical ?? opts.lagWarning * 10;
  if (h.telemetryBacklog >= critical || h.instances.length === 0) return 'critical';
  if (h.telemetryBacklog >= opts.lagWarning || h.deadLetters.total >= (opts.deadLetterWarning ?? 1)) return 'warning';
  return 'ok';
}

/** What the panel needs of one reading to speak plainly. */
export interface HealthReading {
  at: number;
  telemetryBacklog: number;
  /** The processors group on the telemetry stream: entries read so far and the newest entry id. */
  processors: { entriesRead: number | null; lastDeliveredId: string } | null;
}

export interface HealthSummary {
  /** Telemetry packets processed per second between the two readings (null on the first one). */
  packetsPerSecond: number | null;
  /** Seconds since the newest packet the processors took was received (null: none yet). */
  newestAgeSeconds: number | null;
  backlog: number;
}

/** Stream ids start with the millisecond the entry was added. */
function idTime(id: string): number | null {
  const ms = Number(id.split('-')[0]);
  return id && Number.isFinite(ms) && ms > 0 ? ms : null;
}

export function healthSummary(prev: HealthReading | null, cur: HealthReading): HealthSummary {
  const read = cur.processors?.entriesRead ?? null;
  const before = prev?.processors?.entriesRead ?? null;
  const dt = prev ? (cur.at - prev.at) / 1000 : 0;
  const packetsPerSecond = read !== null && before !== null && dt > 0 ? Math.max(0, (read - before) / dt) : null;
  const newest = idTime(cur.processors?.lastDeliveredId ?? '');
  return {
    packetsPerSecond,
    newestAgeSeconds: newest === null ? null : Math.max(0, Math.round((cur.at - newest) / 1000)),
    backlog: cur.telemetryBacklog,
  };
}
