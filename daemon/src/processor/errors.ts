/**
 * How the processor reacts to a failed database write depends on whose fault it is:
 *
 * - `data`: the rows themselves are unacceptable (SQLSTATE classes 22 and 23). Retrying the same
 *   batch would fail forever, so the batch is split until the offending entry is isolated and sent
 *   to the dead-letter stream.
 * - `transient`: anything else — the server is down or restarting, the connection broke, a
 *   deadlock, and also schema errors (42xxx). Those are not the entries' fault: dead-lettering
 *   would empty the stream into `telemetry:dead`, so the batch is retried with backoff, unacked,
 *   and the lag metric tells operators something is wrong.
 */
export type WriteErrorKind = 'data' | 'transient';

export function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

export function classifyWriteError(err: unknown): WriteErrorKind {
  const state = sqlState(err);
  if (state === undefined) return 'transient';
  const cls = state.slice(0, 2);
  return cls === '22' || cls === '23' ? 'data' : 'transient';
}

/** Foreign-key violation: usually a device deleted (and maybe re-created) while cached. */
export function isForeignKeyViolation(err: unknown): boolean {
  return sqlState(err) === '23503';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const state = sqlState(err);
    return state ? `${err.message} (SQLSTATE ${state})` : err.message;
  }
  return String(err);
}

/** Exponential backoff with full jitter, capped. */
export function backoffMs(attempt: number, baseMs = 200, capMs = 10_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 16));
  return Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
}
