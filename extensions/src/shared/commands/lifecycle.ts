/**
 * The command lifecycle as plain rules: which transitions are allowed and what each event writes.
 *
 *   pending → queued → sent → answered | failed | expired | cancelled
 *
 * Every function takes the row as it is (read under its device's lock by the caller) and returns the
 * patch to write, or null when the event must be ignored (duplicate, stale attempt, or a move
 * backwards). Keeping the decision here makes responses idempotent and monotonic by construction.
 */
import type { CommandResponse } from '@fleet/daemon/contract';

export const COMMAND_STATUSES = ['pending', 'queued', 'sent', 'answered', 'failed', 'expired', 'cancelled'] as const;
export type CommandStatus = (typeof COMMAND_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<CommandStatus> = new Set(['answered', 'failed', 'expired', 'cancelled']);

/** Position in the forward order; terminal states share the last rank. */
const RANK: Record<CommandStatus, number> = {
  pending: 0,
  queued: 1,
  sent: 2,
  answered: 3,
  failed: 3,
  expired: 3,
  cancelled: 3,
};

export function isTerminal(status: CommandStatus): boolean {
  return TERMINAL_STATUSES.has(status);
}

/** States a command may be cancelled from (it has not reached the device yet). */
export const CANCELLABLE_STATUSES: ReadonlySet<CommandStatus> = new Set(['pending', 'queued']);
/** States a command may be retried from. */
export const RETRYABLE_STATUSES: ReadonlySet<CommandStatus> = new Set(['failed', 'expired']);

/** Forward moves only; re-dispatch (back to pending) is its own rule, see `redispatch`. */
export function canAdvance(from: CommandStatus, to: CommandStatus): boolean {
  return !isTerminal(from) && RANK[to] > RANK[from];
}

/** The columns the lifecycle reads. Times are whatever the database returns (Date or string). */
export interface CommandRow {
  id: string | number;
  status: CommandStatus;
  attempts: number;
  instance_id: string | null;
  sent_at?: unknown;
  expires_at?: unknown;
  queued_at?: unknown;
}

export interface CommandPatch {
  status?: CommandStatus;
  attempts?: number;
  instance_id?: string | null;
  queued_at?: string | null;
  sent_at?: string | null;
  answered_at?: string | null;
  response?: string | null;
  error?: string | null;
  expires_at?: string;
  cancelled_by?: string | null;
  retried_by?: string | null;
}

export type Decision = { patch: CommandPatch; redispatch: boolean } | { ignore: string };

const iso = (ms: number) => new Date(ms).toISOString();

/** After the dispatch script put the command on an instance's outbound stream. */
export function markQueued(row: CommandRow, attempt: number, instance: string, at: number): Decision {
  if (row.attempts !== attempt) return { ignore: `stale attempt ${attempt} (now ${row.attempts})` };
  if (row.status !== 'pending') return { ignore: `already ${row.status}` };
  return { patch: { status: 'queued', instance_id: instance, queued_at: iso(at), error: null }, redispatch: false };
}

/**
 * Send the command again later: back to `pending` with the next attempt number, or `failed` once
 * `maxAttempts` dispatches have been used up.
 */
export function redispatch(row: CommandRow, reason: string, maxAttempts: number): Decision {
  if (isTerminal(row.status)) return { ignore: `already ${row.status}` };
  if (row.attempts >= maxAttempts) {
    return {
      patch: { status: 'failed', error: `${reason}; gave up after ${row.attempts} attempt(s)` },
      redispatch: false,
    };
  }
  return {
    patch: {
      ...nextAttempt(row),
      error: `${reason}; will be sent again (attempt ${row.attempts + 1} of ${maxAttempts})`,
    },
    redispatch: true,
  };
}

/** Back to `pending` as a new attempt, with nothing left of where the previous one was sent. */
function nextAttempt(row: CommandRow): CommandPatch {
  return { status: 'pending', attempts: row.attempts + 1, instance_id: null, queued_at: null, sent_at: null };
}

/** An outcome reported by the ingestion instance on `commands:responses`. */
export function applyResponse(
  row: CommandRow,
  r: Pick<CommandResponse, 'outcome' | 'attempt' | 'response' | 'error' | 'at' | 'instance'>,
  maxAttempts: number,
): Decision {
  if (r.attempt !== row.attempts) return { ignore: `stale attempt ${r.attempt} (now ${row.attempts})` };
  if (isTerminal(row.status)) return { ignore: `already ${row.status}` };
  switch (r.outcome) {
    case 'sent':
      if (!canAdvance(row.status, 'sent')) return { ignore: `already ${row.status}` };
      return { patch: { status: 'sent', sent_at: iso(r.at), instance_id: r.instance, error: null }, redispatch: false };
    case 'answered':
      return {
        patch: {
          status: 'answered',
          answered_at: iso(r.at),
          // The `sent` report may be lost or arrive later; the answer proves the command went out.
          ...(row.sent_at ? {} : { sent_at: iso(r.at) }),
          instance_id: r.instance,
          response: r.response,
          error: null,
        },
        redispatch: false,
      };
    case 'failed':
      return { patch: { status: 'failed', error: r.error || 'failed on the device link' }, redispatch: false };
    case 'expired':
      return {
        patch: { status: 'expired', error: r.error || 'expired before it could be sent' },
        redispatch: false,
      };
    case 'not_held':
      return redispatch(row, `instance ${r.instance} no longer holds the device`, maxAttempts);
  }
}

/** `by`: the user who cancels (recorded on the item). */
export function cancel(row: CommandRow, by: string | null = null): Decision {
  if (!CANCELLABLE_STATUSES.has(row.status)) {
    return { ignore: `only pending or queued commands can be cancelled (this one is ${row.status})` };
  }
  return { patch: { status: 'cancelled', error: null, cancelled_by: by }, redispatch: false };
}

/** Retry a failed or expired command: a fresh attempt with a fresh lifetime if the old one passed. */
export function retry(row: CommandRow, now: number, ttlMs: number, by: string | null = null): Decision {
  if (!RETRYABLE_STATUSES.has(row.status)) {
    return { ignore: `only failed or expired commands can be retried (this one is ${row.status})` };
  }
  const expires = toMs(row.expires_at);
  return {
    patch: {
      ...nextAttempt(row),
      answered_at: null,
      response: null,
      error: null,
      retried_by: by,
      ...(expires === null || expires <= now ? { expires_at: iso(now + ttlMs) } : {}),
    },
    redispatch: true,
  };
}

/** The sweeper's expiry rule: only commands that never reached the device can expire. */
export function expire(row: CommandRow, now: number): Decision {
  if (row.status !== 'pending' && row.status !== 'queued') return { ignore: `not expirable while ${row.status}` };
  const expires = toMs(row.expires_at);
  if (expires === null || expires > now) return { ignore: 'not expired yet' };
  return { patch: { status: 'expired', error: 'expired before it could be sent' }, redispatch: false };
}

export function toMs(value: unknown): number | null {
  if (value === null || value === undefined || value === '') return null;
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value;
  const ms = Date.parse(String(value));
  return Number.isNaN(ms) ? null : ms;
}

/**
 * Several outcomes of one command read together (e.g. `sent` and `answered` in the same batch):
 * applied in stream order to the row, merged into one write. Same result as writing them one by
 * one, with one database write instead of several.
 */
export function foldResponses(
  row: CommandRow,
  responses: ReadonlyArray<Parameters<typeof applyResponse>[1]>,
  maxAttempts: number,
): { patch: CommandPatch; redispatch: boolean; applied: number } {
  let cur = row;
  let patch: CommandPatch = {};
  let redispatchNeeded = false;
  let applied = 0;
  for (const r of responses) {
    const d = applyResponse(cur, r, maxAttempts);
    if (!('patch' in d)) continue;
    applied++;
    patch = { ...patch, ...d.patch };
    cur = { ...cur, ...d.patch } as CommandRow;
    redispatchNeeded = d.redispatch || (redispatchNeeded && cur.status === 'pending');
  }
  return { patch, redispatch: redispatchNeeded, applied };
}
