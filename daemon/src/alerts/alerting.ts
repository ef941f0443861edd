/**
 * Where rule evaluation meets the database, in two places:
 *
 * - `alertsAfterEvents`: the history derivation's after-events hook. It runs in the transaction
 *   that stored a batch of windows' events, evaluates the rules on the events that are new there
 *   (re-derivations that yield the same events bring none) and records alerts + deliveries in the
 *   same transaction: the events, their alerts and the outbox commit together or not at all.
 * - `sweepAlerts`: periodic, for what only time can decide: `offline` / `no_fix` silences, events
 *   that had to last `min_duration_s`, and resolving silences that ended.
 */
import type { Knex } from 'knex';
import {
  type AlertCandidate,
  type DeviceActivity,
  evaluateRules,
  type Rule,
  type RuleEvent,
  ruleMatchesEvent,
  silenceAlerts,
  watchedDeviceRefs,
} from './rules.js';
import {
  cooldownContext,
  deviceIdsOf,
  loadDevices,
  loadRules,
  type RecordResult,
  recordAlerts,
  recordedAlerts,
  retimedCandidates,
} from './store.js';

export interface AlertingOptions {
  /** Events older than this when evaluated are recorded as stale and not notified. */
  staleAfterS: number;
  now?: () => number;
}

export const DEFAULT_ALERTING: AlertingOptions = { staleAfterS: 15 * 60 };

/** An event as the history derivation stores it (see daemon/src/history/hooks.ts). */
export interface StoredEventLike {
  id: number | string;
  device: number;
  type: string;
  time: number;
  key: string;
  location: { lat: number; lon: number } | null;
  attributes: Record<string, unknown> | null;
  position: number | string | null;
}

export interface EventsChangeLike {
  device: number;
  settings: { timeZone: string };
  events: readonly StoredEventLike[];
  inserted: readonly StoredEventLike[];
}

export const toRuleEvent = (e: StoredEventLike): RuleEvent => ({
  device: e.device,
  type: e.type,
  time: e.time,
  key: e.key,
  lon: e.location?.lon ?? null,
  lat: e.location?.lat ?? null,
  position: e.position,
  attributes: e.attributes,
});

/** Enabled rules, re-read at most every `ttlMs`. */
export function cachedRules(ttlMs: number, onInvalid?: (invalid: Array<{ id: unknown; error: string }>) => void) {
  let rules: Rule[] | null = null;
  let at = 0;
  return async (db: Knex | Knex.Transaction, now: number): Promise<Rule[]> => {
    if (rules === null || now - at >= ttlMs) {
      const loaded = await loadRules(db);
      if (loaded.invalid.length > 0) onInvalid?.(loaded.invalid);
      rules = loaded.rules;
      at = now;
    }
    return rules;
  };
}

/** Where the alerts hook and the watched devices read the enabled rules (one cache serves both). */
export type RulesSource = ReturnType<typeof cachedRules>;

/** How often the watched devices' ids are looked up again while the rules name the same ones. */
export const WATCHED_LOOKUP_MS = 60_000;

/**
 * The history worker's urgent devices (see HistoryExtensions.urgentDevices): those the enabled rules
 * on derived events watch, looked up again when the rules `rulesOf` re-read name other devices;
 * null when a rule watches every device.
 */
export function watchedDevices(rulesOf: RulesSource) {
  let seen: Rule[] | null = null;
  let named: string | null = null;
  let lookedUpAt = Number.NEGATIVE_INFINITY;
  let ids: number[] | null = null;
  return async (db: Knex, now = Date.now()): Promise<number[] | null> => {
    const rules = await rulesOf(db, now);
    if (rules !== seen) {
      seen = rules;
      const refs = watchedDeviceRefs(rules);
      const key = refs === null ? null : JSON.stringify(refs);
      // Rules are re-read every TTL; the lookup (on the watched lane's path) runs when they name
      // other devices, else at most every WATCHED_LOOKUP_MS: a device registered later under a
      // listed IMEI goes first from then on (until then the rest of the fleet's pass derives it).
      if (key !== named || now - lookedUpAt >= WATCHED_LOOKUP_MS) {
        ids = refs === null ? null : await deviceIdsOf(db, refs);
        named = key;
        lookedUpAt = now;
      }
    }
    return ids;
  };
}

async function evaluateAndRecord(
  db: Knex | Knex.Transaction,
  candidates: readonly RuleEvent[],
  related: readonly RuleEvent[],
  rules: readonly Rule[],
  timeZone: string,
  options: AlertingOptions,
  now: number,
): Promise<RecordResult & { pending: number }> {
  // Events no rule's type matches cannot fire (evaluateRules skips them first): most batches have
  // none left, and then no statement is needed.
  const relevant = candidates.filter((e) => rules.some((r) => r.enabled && ruleMatchesEvent(r, e)));
  if (relevant.length === 0) return { inserted: 0, deliveries: 0, pending: 0 };
  const devices = await loadDevices(
    db,
    relevant.map((e) => e.device),
  );
  const recorded = await cooldownContext(db, relevant, rules);
  const { alerts, pending } = evaluateRules(
    relevant,
    rules,
    { now, timeZone, staleAfterS: options.staleAfterS, devices, recorded },
    related,
  );
  const retimed = await retimedCandidates(db, alerts);
  const result = await recordAlerts(
    db,
    alerts.filter((_, i) => !retimed.has(i)),
    new Map(rules.map((r) => [r.id, r])),
    devices,
  );
  return { ...result, pending };
}

/**
 * The after-events hook for the history derivation: the new events of a whole batch of windows are
 * evaluated and recorded together (one pass per time zone in the batch, usually one).
 */
export function alertsAfterEvents(rulesOf: RulesSource, options: AlertingOptions = DEFAULT_ALERTING) {
  return async (trx: Knex.Transaction, changes: readonly EventsChangeLike[]): Promise<void> => {
    const withNew = changes.filter((c) => c.inserted.length > 0);
    if (withNew.length === 0) return;
    const now = options.now?.() ?? Date.now();
    const rules = await rulesOf(trx, now);
    if (rules.length === 0) return;
    const byZone = new Map<string, EventsChangeLike[]>();
    for (const c of withNew) byZone.set(c.settings.timeZone, [...(byZone.get(c.settings.timeZone) ?? []), c]);
    for (const [timeZone, list] of byZone) {
      await evaluateAndRecord(
        trx,
        list.flatMap((c) => c.inserted.map(toRuleEvent)),
        list.flatMap((c) => c.events.map(toRuleEvent)),
        rules,
        timeZone,
        options,
        now,
      );
    }
  };
}

export interface SweepReport {
  silences: number;
  delayed: number;
  resolved: number;
}

/** How far back the sweep looks for events still waiting for their min duration, beyond it. */
const MIN_DURATION_SLACK_MS = 10 * 60_000;

export async function sweepAlerts(
  knex: Knex,
  timeZone: string,
  options: AlertingOptions = DEFAULT_ALERTING,
): Promise<SweepReport> {
  const now = options.now?.() ?? Date.now();
  const { rules } = await loadRules(knex);
  const report: SweepReport = { silences: 0, delayed: 0, resolved: 0 };

  const silenceRules = rules.filter((r) => r.type === 'offline' || r.type === 'no_fix');
  if (silenceRules.length > 0) {
    const res = await knex.raw<{ rows: Array<Record<string, unknown>> }>(
      `SELECT id, imei, name, (extract(epoch FROM last_seen_at) * 1000)::float8 AS seen,
              (extract(epoch FROM last_fix_at) * 1000)::float8 AS fix, ST_X(last_location) AS lon, ST_Y(last_location) AS lat
         FROM devices WHERE enabled`,
    );
    const activity: DeviceActivity[] = res.rows.map((r) => ({
      id: Number(r.id),
      imei: String(r.imei),
      name: (r.name as string | null) ?? null,
      lastSeenAt: r.seen === null ? null : Number(r.seen),
      lastFixAt: r.fix === null ? null : Number(r.fix),
      lon: r.lon === null ? null : Number(r.lon),
      lat: r.lat === null ? null : Number(r.lat),
    }));
    const maxCooldown = Math.max(0, ...silenceRules.map((r) => r.cooldown_s)) * 1000;
    const oldest = Math.min(now, ...activity.flatMap((a) => [a.lastSeenAt ?? now, a.lastFixAt ?? now]));
    const recorded =
      maxCooldown > 0
        ? await recordedAlerts(
            knex,
            silenceRules.map((r) => r.id),
            activity.map((a) => a.id),
            oldest - maxCooldown,
            now + maxCooldown,
          )
        : new Map<string, number[]>();
    const candidates: AlertCandidate[] = silenceAlerts(activity, silenceRules, {
      now,
      timeZone,
      staleAfterS: options.staleAfterS,
      recorded,
    });
    const devices = new Map(activity.map((a) => [a.id, a]));
    const result = await knex.transaction((trx) =>
      recordAlerts(trx, candidates, new Map(silenceRules.map((r) => [r.id, r])), devices),
    );
    report.silences = result.inserted;
  }

  const delayedRules = rules.filter((r) => r.min_duration_s > 0 && r.type !== 'offline' && r.type !== 'no_fix');
  if (delayedRules.length > 0) {
    const lookback = Math.max(...delayedRules.map((r) => r.min_duration_s)) * 1000 + MIN_DURATION_SLACK_MS;
    const res = await knex.raw<{ rows: Array<Record<string, unknown>> }>(
      `SELECT id, device, type, key, (extract(epoch FROM time) * 1000)::float8 AS ms, ST_X(location) AS lon,
              ST_Y(location) AS lat, attributes, position
         FROM events WHERE time > ? ORDER BY time`,
      [new Date(now - lookback).toISOString()],
    );
    const events: RuleEvent[] = res.rows.map((r) => ({
      device: Number(r.device),
      type: String(r.type),
      time: Number(r.ms),
      key: String(r.key),
      lon: r.lon === null ? null : Number(r.lon),
      lat: r.lat === null ? null : Number(r.lat),
      position: (r.position as string | number | null) ?? null,
      attributes: (typeof r.attributes === 'string' ? JSON.parse(r.attributes) : r.attributes) as Record<
        string,
        unknown
      > | null,
    }));
    if (events.length > 0) {
      const result = await knex.transaction((trx) =>
        evaluateAndRecord(trx, events, events, delayedRules, timeZone, options, now),
      );
      report.delayed = result.inserted;
    }
  }

  const resolved = await knex.raw<{ rowCount: number }>(
    `UPDATE alerts a SET state = 'resolved', resolved_at = now()
       FROM devices d
      WHERE a.device = d.id AND a.state <> 'resolved' AND (
            (a.event_type = 'offline' AND d.last_seen_at > a.event_time)
         OR (a.event_type = 'no_fix' AND d.last_fix_at > a.event_time))`,
  );
  report.resolved = resolved.rowCount ?? 0;
  return report;
}
