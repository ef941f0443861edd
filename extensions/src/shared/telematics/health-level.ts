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
