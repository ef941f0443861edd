/**
 * Alert rules → alerts: a pure function of events, rules, the alerts already recorded (for the
 * cooldown) and the evaluation time. No I/O; ./store.ts feeds it and writes what it returns.
 *
 * An alert's identity is (rule, device, event type, event time, event key): the same event always
 * yields the same identity, so re-deriving a window or replaying a stream never fires twice (the
 * table's unique index drops the repeat). Per rule, in this order:
 * - enabled; the event type matches the rule type (`overspeed` = `overspeed_start`, `alarm` and
 *   `low_power` = their event families, geofence rules = that geofence's key); the device is listed
 *   (or the list is empty);
 * - schedule: the event time falls in one of the rule's time-of-week windows (fleet time zone);
 * - min duration: the condition lasted `min_duration_s` (an end event later than that, or the event's
 *   own `duration_s`, or still going at `now`); until then the event is `pending` and a later
 *   evaluation (the periodic sweep) decides;
 * - cooldown: no other alert of the rule for the device within `cooldown_s` of the event;
 * - stale: an event older than `staleAfterS` at evaluation is recorded with `stale: true` and is
 *   only delivered when the rule says `notify_stale`.
 * `offline` / `no_fix` have no event: `silenceAlerts` makes them from device state and `now`.
 */
import { z } from 'zod';
import {
  ALARM_EVENT_TYPES,
  GEOFENCE_EVENT_TYPES,
  LOW_POWER_EVENT_TYPES,
  zoneOverspeedKey,
} from '../contract/alerts.js';
import { inSchedule, Schedule } from './schedule.js';

const stringList = z
  .array(z.union([z.string(), z.number()]))
  .nullish()
  .transform((l) => (l ?? []).map((v) => String(v).trim()).filter((v) => v !== ''));

/** A row of `alert_rules` as the database returns it, parsed once. */
export const RuleRow = z.object({
  id: z.coerce.number().int(),
  name: z.string(),
  enabled: z.boolean(),
  type: z.string().min(1),
  geofence: z.coerce.number().int().nullable(),
  devices: stringList,
  after_minutes: z.coerce.number().nullable(),
  min_duration_s: z.coerce
    .number()
    .nullable()
    .transform((v) => v ?? 0),
  cooldown_s: z.coerce
    .number()
    .nullable()
    .transform((v) => v ?? 0),
  schedule: Schedule,
  notify_stale: z.boolean(),
  notify_users: stringList,
  notify_roles: stringList,
  email_to: stringList,
  webhook_url: z.string().nullable(),
  webhook_secret: z.string().nullable(),
});
export type Rule = z.infer<typeof RuleRow>;

/**
 * The devices (ids or IMEIs, as the rules name them) that enabled rules on derived events watch, so
 * the history worker derives them first; null when such a rule watches every device (nothing to put
 * first). Silence rules (`offline`, `no_fix`) are the sweep's, not the derivation's.
 */
export function watchedDeviceRefs(rules: readonly Rule[]): string[] | null {
  const refs = new Set<string>();
  for (const rule of rules) {
    if (!rule.enabled || SILENCE_RULE_TYPES.has(rule.type)) continue;
    if (rule.devices.length === 0) return null;
    for (const d of rule.devices) refs.add(d);
  }
  return [...refs].sort();
}

/** Where and with what an event happened; an alert carries its event's. */
export interface EventPlace {
  lon: number | null;
  lat: number | null;
  position: number | string | null;
  attributes: Record<string, unknown> | null;
}

export interface RuleEvent extends EventPlace {
  device: number;
  type: string;
  /** epoch ms */
  time: number;
  key: string;
}

export interface DeviceRef {
  id: number;
  imei: string;
  name: string | null;
}

export interface AlertCandidate extends EventPlace {
  rule: number;
  device: number;
  eventType: string;
  eventTime: number;
  eventKey: string;
  stale: boolean;
  /** Whether deliveries are created (false for stale events unless the rule asks). */
  deliver: boolean;
}

export interface EvaluationContext {
  now: number;
  /** The fleet time zone (IANA name) for schedules. */
  timeZone: string;
  /** Events older than this at evaluation are stale. */
  staleAfterS: number;
  devices: ReadonlyMap<number, DeviceRef>;
  /** Event times (epoch ms) of alerts already recorded, by `cooldownKey(rule, device)`. */
  recorded: ReadonlyMap<string, readonly number[]>;
}

export const cooldownKey = (rule: number, device: number): string => `${rule}:${device}`;

/** The event that ends the condition a start event begins (same device and key). */
const END_OF: Record<string, string> = {
  [GEOFENCE_EVENT_TYPES.enter]: GEOFENCE_EVENT_TYPES.exit,
  [GEOFENCE_EVENT_TYPES.overspeedStart]: GEOFENCE_EVENT_TYPES.overspeedEnd,
  ignition_on: 'ignition_off',
  ignition_off: 'ignition_on',
  trip_start: 'trip_end',
  device_offline: 'device_online',
};

/** The event type that ends the condition `type` begins, if it is such a start (see END_OF). */
export const endEventOf = (type: string): string | undefined => END_OF[type];

const ALARMS = new Set<string>(ALARM_EVENT_TYPES);
const LOW_POWER = new Set<string>(LOW_POWER_EVENT_TYPES);
/** Rule types evaluated from device state over time, not from events. */
export const SILENCE_RULE_TYPES = new Set(['offline', 'no_fix']);

export function ruleMatchesEvent(rule: Rule, e: RuleEvent): boolean {
  switch (rule.type) {
    case GEOFENCE_EVENT_TYPES.enter:
    case GEOFENCE_EVENT_TYPES.exit:
      return e.type === rule.type && (rule.geofence === null || e.key === String(rule.geofence));
    case 'overspeed':
      return (
        e.type === GEOFENCE_EVENT_TYPES.overspeedStart &&
        (rule.geofence === null || e.key === zoneOverspeedKey(rule.geofence))
      );
    case 'alarm':
      return ALARMS.has(e.type);
    case 'low_power':
      return LOW_POWER.has(e.type);
    default:
      return !SILENCE_RULE_TYPES.has(rule.type) && e.type === rule.type;
  }
}

export function ruleWatchesDevice(rule: Rule, device: DeviceRef | undefined, deviceId: number): boolean {
  if (rule.devices.length === 0) return true;
  const id = String(deviceId);
  return rule.devices.some((d) => d === id || (device !== undefined && d === device.imei));
}

type Duration = 'long_enough' | 'too_short' | 'pending';

function lasted(rule: Rule, e: RuleEvent, all: readonly RuleEvent[], now: number): Duration {
  const min = rule.min_duration_s * 1000;
  if (min <= 0) return 'long_enough';
  const own = e.attributes?.duration_s;
  if (typeof own === 'number') return own * 1000 >= min ? 'long_enough' : 'too_short';
  const endType = END_OF[e.type];
  if (endType === undefined) return 'long_enough';
  let end: number | undefined;
  for (const x of all) {
    if (x.device === e.device && x.type === endType && x.key === e.key && x.time > e.time) {
      if (end === undefined || x.time < end) end = x.time;
    }
  }
  if (end !== undefined) return end - e.time >= min ? 'long_enough' : 'too_short';
  return now - e.time >= min ? 'long_enough' : 'pending';
}

/** Accepts a candidate unless another alert of the same rule and device lies within the cooldown. */
class Cooldowns {
  private readonly accepted = new Map<string, number[]>();
  constructor(private readonly recorded: ReadonlyMap<string, readonly number[]>) {}

  tryAccept(rule: Rule, device: number, time: number): boolean {
    const key = cooldownKey(rule.id, device);
    const window = rule.cooldown_s * 1000;
    const taken = this.accepted.get(key) ?? [];
    if (window > 0) {
      const near = (t: number) => Math.abs(t - time) < window;
      if ((this.recorded.get(key) ?? []).some(near) || taken.some(near)) return false;
    }
    taken.push(time);
    this.accepted.set(key, taken);
    return true;
  }
}

export interface Evaluation {
  alerts: AlertCandidate[];
  /** Events that may still qualify once they last `min_duration_s` (re-evaluated later). */
  pending: number;
}

/**
 * Alerts for `events` (one or many devices, any order). `related` are the events around them
 * (default: the same) in which a start event's end is looked up for the min duration.
 * `context.recorded` must hold the alerts recorded within the largest cooldown around these events;
 * identities already recorded are returned again only when no cooldown applies (the insert
 * ignores them).
 */
export function evaluateRules(
  events: readonly RuleEvent[],
  rules: readonly Rule[],
  context: EvaluationContext,
  related: readonly RuleEvent[] = events,
): Evaluation {
  const sorted = [...events].sort((a, b) => a.time - b.time || a.device - b.device);
  const cooldowns = new Cooldowns(context.recorded);
  const alerts: AlertCandidate[] = [];
  let pending = 0;
  for (const rule of rules) {
    if (!rule.enabled || SILENCE_RULE_TYPES.has(rule.type)) continue;
    for (const e of sorted) {
      if (!ruleMatchesEvent(rule, e)) continue;
      if (!ruleWatchesDevice(rule, context.devices.get(e.device), e.device)) continue;
      if (!inSchedule(rule.schedule, e.time, context.timeZone)) continue;
      const duration = lasted(rule, e, related, context.now);
      if (duration === 'too_short') continue;
      if (duration === 'pending') {
        pending++;
        continue;
      }
      if (!cooldowns.tryAccept(rule, e.device, e.time)) continue;
      const stale = context.now - e.time > context.staleAfterS * 1000;
      alerts.push({
        rule: rule.id,
        device: e.device,
        eventType: e.type,
        eventTime: e.time,
        eventKey: e.key,
        lon: e.lon,
        lat: e.lat,
        position: e.position,
        attributes: e.attributes,
        stale,
        deliver: !stale || rule.notify_stale,
      });
    }
  }
  return { alerts, pending };
}

export interface DeviceActivity extends DeviceRef {
  /** Last packet of any kind (epoch ms), null if never seen. */
  lastSeenAt: number | null;
  /** Last unflagged fix (epoch ms), null if none. */
  lastFixAt: number | null;
  lon: number | null;
  lat: number | null;
}

/**
 * `offline` (no packet for `after_minutes`) and `no_fix` (no valid fix for `after_minutes`) alerts.
 * The event time is the start of the silence (last packet / last fix), so one silence is one
 * identity however often this runs. The schedule applies to the moment the silence qualified.
 */
export function silenceAlerts(
  devices: readonly DeviceActivity[],
  rules: readonly Rule[],
  context: Omit<EvaluationContext, 'devices'>,
): AlertCandidate[] {
  const cooldowns = new Cooldowns(context.recorded);
  const out: AlertCandidate[] = [];
  for (const rule of rules) {
    if (!rule.enabled || !SILENCE_RULE_TYPES.has(rule.type)) continue;
    const after = (rule.after_minutes ?? 0) * 60_000;
    if (after <= 0) continue;
    for (const d of devices) {
      const since = rule.type === 'offline' ? d.lastSeenAt : d.lastFixAt;
      if (since === null || context.now - since < after) continue;
      if (!ruleWatchesDevice(rule, d, d.id)) continue;
      if (!inSchedule(rule.schedule, since + after, context.timeZone)) continue;
      if (!cooldowns.tryAccept(rule, d.id, since)) continue;
      out.push({
        rule: rule.id,
        device: d.id,
        eventType: rule.type,
        eventTime: since,
        eventKey: '',
        lon: d.lon,
        lat: d.lat,
        position: null,
        attributes: { silent_minutes: rule.after_minutes },
        stale: false,
        deliver: true,
      });
    }
  }
  return out;
}

const VERBS: Record<string, string> = {
  geofence_enter: 'entered',
  geofence_exit: 'left',
  ignition_on: 'ignition on',
  ignition_off: 'ignition off',
  offline: 'offline',
  no_fix: 'has no GPS fix',
};

/** One line for the notification subject, the e-mail and the alerts list. */
export function alertMessage(rule: Pick<Rule, 'name'>, device: DeviceRef | undefined, a: AlertCandidate): string {
  const who = device ? (device.name ?? device.imei) : `device ${a.device}`;
  const zone = typeof a.attributes?.geofence_name === 'string' ? a.attributes.geofence_name : null;
  let what = VERBS[a.eventType] ?? a.eventType.replaceAll('_', ' ');
  if (a.eventType === GEOFENCE_EVENT_TYPES.overspeedStart) {
    const speed = a.attributes?.speed;
    const limit = a.attributes?.limit;
    what = `speeding${typeof speed === 'number' ? ` at ${speed} km/h` : ''}${typeof limit === 'number' ? ` (limit ${limit})` : ''}`;
    if (zone) what += ` in ${zone}`;
  } else if (zone) {
    what += ` ${zone}`;
  } else if (a.eventType === 'offline' || a.eventType === 'no_fix') {
    what += ` for ${a.attributes?.silent_minutes ?? '?'} min`;
  }
  return `${rule.name}: ${who} ${what}`;
}
