/**
 * Alerts in the database: reads what rule evaluation needs (rules, devices, alerts already
 * recorded) and writes what it decided (alerts + their pending deliveries), in the caller's
 * transaction. Used by the history derivation's after-events hook (so alerts and deliveries commit
 * with the events that fired them) and by the periodic sweep (offline / no_fix, min durations).
 */
import type { Knex } from 'knex';
import { DELIVERIES_NOTIFY_CHANNEL, type DeliveryChannel } from '../contract/alerts.js';
import {
  type AlertCandidate,
  alertMessage,
  cooldownKey,
  type DeviceRef,
  endEventOf,
  type Rule,
  type RuleEvent,
  RuleRow,
} from './rules.js';

type Db = Knex | Knex.Transaction;

const RULE_COLUMNS = `id, name, enabled, type, geofence, devices, after_minutes, min_duration_s, cooldown_s, schedule,
  notify_stale, notify_users, notify_roles, email_to, webhook_url, webhook_secret`;

export interface LoadedRules {
  rules: Rule[];
  /** Rules whose row does not parse (e.g. a malformed schedule), with the reason; they fire nothing. */
  invalid: Array<{ id: unknown; error: string }>;
}

export async function loadRules(db: Db): Promise<LoadedRules> {
  const res = await db.raw<{ rows: Record<string, unknown>[] }>(
    `SELECT ${RULE_COLUMNS} FROM alert_rules WHERE enabled ORDER BY id`,
  );
  const rules: Rule[] = [];
  const invalid: LoadedRules['invalid'] = [];
  for (const row of res.rows) {
    const parsed = RuleRow.safeParse(row);
    if (parsed.success) rules.push(parsed.data);
    else
      invalid.push({
        id: row.id,
        error: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      });
  }
  return { rules, invalid };
}

export async function loadDevices(db: Db, ids: readonly number[]): Promise<Map<number, DeviceRef>> {
  if (ids.length === 0) return new Map();
  const res = await db.raw<{ rows: Array<{ id: number; imei: string; name: string | null }> }>(
    'SELECT id, imei, name FROM devices WHERE id = ANY(?::int[])',
    [[...new Set(ids)]],
  );
  return new Map(res.rows.map((r) => [Number(r.id), { id: Number(r.id), imei: r.imei, name: r.name }]));
}

/** The ids of the devices named by id or IMEI (as rules name them). */
export async function deviceIdsOf(db: Db, refs: readonly string[]): Promise<number[]> {
  if (refs.length === 0) return [];
  const res = await db.raw<{ rows: Array<{ id: number }> }>(
    'SELECT id FROM devices WHERE id::text = ANY(?::text[]) OR imei = ANY(?::text[]) ORDER BY id',
    [refs, refs],
  );
  return res.rows.map((r) => Number(r.id));
}

/** Event times of alerts already recorded for these rules and devices between two times. */
export async function recordedAlerts(
  db: Db,
  rules: readonly number[],
  devices: readonly number[],
  from: number,
  to: number,
): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  if (rules.length === 0 || devices.length === 0) return out;
  const res = await db.raw<{ rows: Array<{ rule: number; device: number; ms: number }> }>(
    `SELECT rule, device, (extract(epoch FROM event_time) * 1000)::float8 AS ms FROM alerts
      WHERE rule = ANY(?::int[]) AND device = ANY(?::int[]) AND event_time BETWEEN ? AND ?`,
    [rules, devices, new Date(from).toISOString(), new Date(to).toISOString()],
  );
  for (const r of res.rows) {
    const key = cooldownKey(Number(r.rule), Number(r.device));
    const list = out.get(key) ?? [];
    list.push(Number(r.ms));
    out.set(key, list);
  }
  return out;
}

/** The cooldown context for candidates: alerts within the largest cooldown of their rules around them. */
export async function cooldownContext(
  db: Db,
  events: readonly Pick<RuleEvent, 'device' | 'time'>[],
  rules: readonly Rule[],
): Promise<Map<string, number[]>> {
  const withCooldown = rules.filter((r) => r.cooldown_s > 0);
  if (withCooldown.length === 0 || events.length === 0) return new Map();
  const margin = Math.max(...withCooldown.map((r) => r.cooldown_s)) * 1000;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const e of events) {
    if (e.time < min) min = e.time;
    if (e.time > max) max = e.time;
  }
  return recordedAlerts(
    db,
    withCooldown.map((r) => r.id),
    [...new Set(events.map((e) => e.device))],
    min - margin,
    max + margin,
  );
}

/**
 * Which candidates (by index) only re-time an occurrence a rule already alerted: fixes of a device
 * committed out of order (the processor writes batches concurrently) can make a window confirm a
 * state change at a later fix than the re-derivation does once the earlier fix is in, which
 * replaces the event by one at another time, so another alert identity. Such a candidate has an
 * alert of its rule, device, type and key whose event is gone from `events`, with no event of that
 * type or of its end type for the key in between. Only types that begin a condition (enter, start,
 * on) are looked at; reads `events` as this transaction left it.
 */
export async function retimedCandidates(db: Db, candidates: readonly AlertCandidate[]): Promise<Set<number>> {
  const starts = candidates.flatMap((a, i) => {
    const end = endEventOf(a.eventType);
    return end === undefined ? [] : [{ i, a, end }];
  });
  if (starts.length === 0) return new Set();
  const res = await db.raw<{ rows: Array<{ i: number }> }>(
    `SELECT u.i FROM unnest(?::int[], ?::int[], ?::int[], ?::text[], ?::text[], ?::timestamptz[], ?::text[])
       AS u(i, rule, device, type, key, time, end_type)
      WHERE EXISTS (
        SELECT 1 FROM alerts a
         WHERE a.rule = u.rule AND a.device = u.device AND a.event_type = u.type AND a.event_key = u.key
           AND a.event_time <> u.time
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.device = a.device AND e.type = a.event_type
                              AND e.key = a.event_key AND e.time = a.event_time)
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.device = u.device AND e.key = u.key
                              AND e.type IN (u.type, u.end_type)
                              AND e.time > least(a.event_time, u.time) AND e.time < greatest(a.event_time, u.time)))`,
    [
      starts.map((x) => x.i),
      starts.map((x) => x.a.rule),
      starts.map((x) => x.a.device),
      starts.map((x) => x.a.eventType),
      starts.map((x) => x.a.eventKey),
      starts.map((x) => iso(x.a.eventTime)),
      starts.map((x) => x.end),
    ],
  );
  return new Set(res.rows.map((r) => Number(r.i)));
}

interface Recipient {
  id: string;
  email: string | null;
  emailNotifications: boolean;
  role: string | null;
  roleName: string | null;
}

async function activeUsers(db: Db): Promise<Recipient[]> {
  const res = await db.raw<{ rows: Array<Record<string, unknown>> }>(
    `SELECT u.id::text AS id, u.email, u.email_notifications, u.role::text AS role, r.name AS role_name
       FROM directus_users u LEFT JOIN directus_roles r ON r.id = u.role WHERE u.status = 'active'`,
  );
  return res.rows.map((r) => ({
    id: String(r.id),
    email: (r.email as string | null) ?? null,
    emailNotifications: r.email_notifications === true,
    role: (r.role as string | null) ?? null,
    roleName: (r.role_name as string | null) ?? null,
  }));
}

export interface DeliveryTarget {
  channel: DeliveryChannel;
  target: string;
}

/**
 * Where a rule's alerts go: an in-app notification per user named (by id or e-mail) or in a named
 * role (by id or name), an e-mail to each of those users who turned e-mail notifications on and to
 * each address in `email_to`, and the webhook. Each target once. Pure.
 */
export function deliveryTargets(rule: Rule, users: readonly Recipient[]): DeliveryTarget[] {
  const lower = (s: string) => s.toLowerCase();
  const named = new Set(rule.notify_users.map(lower));
  const roles = new Set(rule.notify_roles.map(lower));
  const out: DeliveryTarget[] = [];
  const emails = new Set<string>();
  for (const u of users) {
    const byUser = named.has(lower(u.id)) || (u.email !== null && named.has(lower(u.email)));
    const byRole =
      (u.role !== null && roles.has(lower(u.role))) || (u.roleName !== null && roles.has(lower(u.roleName)));
    if (!byUser && !byRole) continue;
    out.push({ channel: 'app', target: u.id });
    if (u.emailNotifications && u.email) emails.add(lower(u.email));
  }
  for (const address of rule.email_to) emails.add(lower(address));
  for (const address of [...emails].sort()) out.push({ channel: 'email', target: address });
  if (rule.webhook_url) out.push({ channel: 'webhook', target: rule.webhook_url });
  return out;
}

export interface RecordResult {
  /** Alerts that did not exist before. */
  inserted: number;
  deliveries: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Inserts the alerts (ignoring identities already recorded) and, for those really inserted and
 * meant to be delivered, their deliveries; then NOTIFYs the senders (delivered at commit).
 */
export async function recordAlerts(
  db: Db,
  candidates: readonly AlertCandidate[],
  rules: ReadonlyMap<number, Rule>,
  devices: ReadonlyMap<number, DeviceRef>,
): Promise<RecordResult> {
  if (candidates.length === 0) return { inserted: 0, deliveries: 0 };
  const col = <T>(f: (a: AlertCandidate) => T) => candidates.map(f);
  const res = await db.raw<{
    rows: Array<{ id: string; rule: number; device: number; event_type: string; event_key: string; ms: number }>;
  }>(
    `INSERT INTO alerts (rule, device, event_type, event_time, event_key, location, attributes, message, state, stale, created_at)
     SELECT u.rule, u.device, u.event_type, u.event_time, u.event_key,
            CASE WHEN u.lon IS NULL OR u.lat IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) END,
            u.attributes::json, u.message, 'open', u.stale, now()
       FROM unnest(?::int[], ?::int[], ?::text[], ?::timestamptz[], ?::text[], ?::float8[], ?::float8[], ?::text[], ?::text[], ?::bool[])
         AS u(rule, device, event_type, event_time, event_key, lon, lat, attributes, message, stale)
     ON CONFLICT (rule, device, event_time, event_type, event_key) DO NOTHING
     RETURNING id::text AS id, rule, device, event_type, event_key, (extract(epoch FROM event_time) * 1000)::float8 AS ms`,
    [
      col((a) => a.rule),
      col((a) => a.device),
      col((a) => a.eventType),
      col((a) => iso(a.eventTime)),
      col((a) => a.eventKey),
      col((a) => a.lon),
      col((a) => a.lat),
      col((a) => (a.attributes === null ? null : JSON.stringify(a.attributes))),
      col((a) => {
        const rule = rules.get(a.rule);
        return rule ? alertMessage(rule, devices.get(a.device), a) : '';
      }),
      col((a) => a.stale),
    ],
  );
  const inserted = res.rows;
  const identity = (rule: number, device: number, type: string, key: string, ms: number) =>
    `${rule}|${device}|${type}|${key}|${ms}`;
  const deliver = new Set(
    candidates.filter((a) => a.deliver).map((a) => identity(a.rule, a.device, a.eventType, a.eventKey, a.eventTime)),
  );

  const alertIds: string[] = [];
  const channels: string[] = [];
  const targets: string[] = [];
  let users: Recipient[] | undefined;
  for (const row of inserted) {
    if (!deliver.has(identity(Number(row.rule), Number(row.device), row.event_type, row.event_key, Number(row.ms))))
      continue;
    const rule = rules.get(Number(row.rule));
    if (!rule) continue;
    if (rule.notify_users.length + rule.notify_roles.length > 0) users ??= await activeUsers(db);
    for (const t of deliveryTargets(rule, users ?? [])) {
      alertIds.push(row.id);
      channels.push(t.channel);
      targets.push(t.target);
    }
  }
  if (alertIds.length > 0) {
    await db.raw(
      `INSERT INTO alert_deliveries (alert, channel, target, status, attempts, next_attempt_at, created_at)
       SELECT u.alert, u.channel, u.target, 'pending', 0, now(), now()
         FROM unnest(?::bigint[], ?::text[], ?::text[]) AS u(alert, channel, target)
       ON CONFLICT (alert, channel, target) DO NOTHING`,
      [alertIds, channels, targets],
    );
    await db.raw('SELECT pg_notify(?, ?)', [DELIVERIES_NOTIFY_CHANNEL, [...new Set(channels)].sort().join(',')]);
  }
  return { inserted: inserted.length, deliveries: alertIds.length };
}
