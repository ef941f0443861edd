import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  alertMessage,
  cooldownKey,
  type DeviceRef,
  type EvaluationContext,
  evaluateRules,
  type Rule,
  type RuleEvent,
  RuleRow,
  silenceAlerts,
  watchedDeviceRefs,
} from './rules.js';
import { inSchedule, localTimeOfWeek } from './schedule.js';

// Monday 2026-11-30 12:00 UTC.
const MON_NOON = Date.UTC(2026, 10, 30, 12, 0, 0);
const H = 3600_000;
const VAN: DeviceRef = { id: 1, imei: '356307042441013', name: 'Van 1' };
const TRUCK: DeviceRef = { id: 2, imei: '356307042441021', name: null };
const devices = new Map([
  [VAN.id, VAN],
  [TRUCK.id, TRUCK],
]);

function rule(over: Partial<Record<keyof Rule, unknown>> = {}): Rule {
  return RuleRow.parse({
    id: 1,
    name: 'Depot',
    enabled: true,
    type: 'geofence_enter',
    geofence: null,
    devices: null,
    after_minutes: null,
    min_duration_s: 0,
    cooldown_s: 0,
    schedule: null,
    notify_stale: false,
    notify_users: null,
    notify_roles: null,
    email_to: null,
    webhook_url: null,
    webhook_secret: null,
    ...over,
  });
}

function ev(type: string, time: number, over: Partial<RuleEvent> = {}): RuleEvent {
  return { device: 1, type, time, key: '7', lon: 25, lat: 54, position: null, attributes: {}, ...over };
}

function ctx(over: Partial<EvaluationContext> = {}): EvaluationContext {
  return { now: MON_NOON + H, timeZone: 'UTC', staleAfterS: 2 * 3600, devices, recorded: new Map(), ...over };
}

const times = (alerts: { eventTime: number }[]) => alerts.map((a) => (a.eventTime - MON_NOON) / 1000);

describe('schedule', () => {
  it('reads the local weekday and time in the fleet time zone', () => {
    // 23:30 UTC on Monday is 01:30 on Tuesday in Vilnius (UTC+2 in winter).
    expect(localTimeOfWeek(Date.UTC(2026, 10, 30, 23, 30), 'Europe/Vilnius')).toEqual({ day: 2, minute: 90 });
    expect(localTimeOfWeek(Date.UTC(2026, 10, 30, 23, 30), 'UTC')).toEqual({ day: 1, minute: 23 * 60 + 30 });
  });

  it('"nights and weekends": a window past midnight belongs to the day it starts on', () => {
    const nightsAndWeekends = [
      { days: [1, 2, 3, 4, 5], from: '20:00', to: '06:00' },
      { days: [6, 7], from: '00:00', to: '00:00' },
    ];
    const at = (d: number, h: number, m = 0) => inSchedule(nightsAndWeekends, Date.UTC(2026, 10, 30 + d, h, m), 'UTC');
    expect(at(0, 12)).toBe(false); // Monday noon
    expect(at(0, 21)).toBe(true); // Monday night
    expect(at(1, 5, 59)).toBe(true); // Tuesday early morning (Monday's night)
    expect(at(1, 6)).toBe(false);
    expect(at(5, 12)).toBe(true); // Saturday
    // Monday 03:00 follows Sunday, whose whole-day window does not run past midnight.
    expect(at(7, 3)).toBe(false);
  });

  it('an empty schedule means always', () => {
    expect(inSchedule([], MON_NOON, 'UTC')).toBe(true);
  });
});

describe('evaluateRules', () => {
  it('fires for a matching event with a stable identity, and again identically on re-evaluation', () => {
    const events = [ev('geofence_enter', MON_NOON), ev('geofence_exit', MON_NOON + 60_000)];
    const first = evaluateRules(events, [rule()], ctx());
    expect(first.alerts).toHaveLength(1);
    expect(first.alerts[0]).toMatchObject({
      rule: 1,
      device: 1,
      eventType: 'geofence_enter',
      eventTime: MON_NOON,
      eventKey: '7',
      stale: false,
      deliver: true,
    });
    expect(evaluateRules([...events].reverse(), [rule()], ctx()).alerts).toEqual(first.alerts);
  });

  it('geofence rules match only their geofence; overspeed rules match zone overspeed of their zone', () => {
    const events = [
      ev('geofence_enter', MON_NOON, { key: '7' }),
      ev('geofence_enter', MON_NOON + 1000, { key: '8' }),
      ev('overspeed_start', MON_NOON + 2000, { key: 'zone:8' }),
      ev('overspeed_start', MON_NOON + 3000, { key: '' }),
    ];
    expect(times(evaluateRules(events, [rule({ geofence: 8 })], ctx()).alerts)).toEqual([1]);
    expect(times(evaluateRules(events, [rule({ type: 'overspeed', geofence: 8 })], ctx()).alerts)).toEqual([2]);
    expect(times(evaluateRules(events, [rule({ type: 'overspeed' })], ctx()).alerts)).toEqual([2, 3]);
  });

  it('alarm and low_power stand for their event families; other names match exactly; silence rules never match events', () => {
    const events = [
      ev('crash', MON_NOON),
      ev('towing', MON_NOON + 1000),
      ev('power_lost', MON_NOON + 2000),
      ev('trip_start', MON_NOON + 3000),
    ];
    expect(times(evaluateRules(events, [rule({ type: 'alarm' })], ctx()).alerts)).toEqual([0, 1]);
    expect(times(evaluateRules(events, [rule({ type: 'low_power' })], ctx()).alerts)).toEqual([2]);
    expect(times(evaluateRules(events, [rule({ type: 'trip_start' })], ctx()).alerts)).toEqual([3]);
    expect(evaluateRules(events, [rule({ type: 'offline', after_minutes: 5 })], ctx()).alerts).toEqual([]);
  });

  it('device lists accept ids or IMEIs; disabled rules fire nothing', () => {
    const events = [ev('ignition_on', MON_NOON, { device: 1 }), ev('ignition_on', MON_NOON + 1000, { device: 2 })];
    const r = (devs: string[]) =>
      times(evaluateRules(events, [rule({ type: 'ignition_on', devices: devs })], ctx()).alerts);
    expect(r([])).toEqual([0, 1]);
    expect(r([TRUCK.imei])).toEqual([1]);
    expect(r(['1'])).toEqual([0]);
    expect(evaluateRules(events, [rule({ type: 'ignition_on', enabled: false })], ctx()).alerts).toEqual([]);
  });

  it('schedule: only events inside the windows, in the fleet time zone', () => {
    const nights = [{ days: [], from: '22:00', to: '06:00' }];
    const events = [ev('ignition_on', MON_NOON), ev('ignition_on', Date.UTC(2026, 10, 30, 21, 0))];
    const r = (tz: string) =>
      evaluateRules(
        events,
        [rule({ type: 'ignition_on', schedule: nights })],
        ctx({ now: Date.UTC(2026, 10, 30, 21, 1), timeZone: tz }),
      ).alerts.length;
    // 21:00 UTC is 23:00 in Vilnius (night) but still evening in UTC.
    expect(r('UTC')).toBe(0);
    expect(r('Europe/Vilnius')).toBe(1);
  });

  it('cooldown per rule and device, also against alerts already recorded', () => {
    const events = [0, 30, 90, 100, 200].map((s) => ev('ignition_on', MON_NOON + s * 1000));
    const withCooldown = rule({ type: 'ignition_on', cooldown_s: 60 });
    expect(times(evaluateRules(events, [withCooldown], ctx()).alerts)).toEqual([0, 90, 200]);
    // Another device is not affected.
    const mixed = [...events, ev('ignition_on', MON_NOON + 30_000, { device: 2 })];
    expect(evaluateRules(mixed, [withCooldown], ctx()).alerts.filter((a) => a.device === 2)).toHaveLength(1);
    // An alert recorded earlier at +40 s blocks 0 and 90 (both within 60 s of it).
    const recorded = new Map([[cooldownKey(1, 1), [MON_NOON + 40_000]]]);
    expect(times(evaluateRules(events, [withCooldown], ctx({ recorded })).alerts)).toEqual([100, 200]);
  });

  it('stale events are recorded but not delivered unless the rule asks', () => {
    const old = [ev('ignition_on', MON_NOON - 3 * H)];
    const fresh = [ev('ignition_on', MON_NOON)];
    const c = ctx({ now: MON_NOON + 60_000, staleAfterS: 15 * 60 });
    expect(evaluateRules(fresh, [rule({ type: 'ignition_on' })], c).alerts[0]).toMatchObject({
      stale: false,
      deliver: true,
    });
    expect(evaluateRules(old, [rule({ type: 'ignition_on' })], c).alerts[0]).toMatchObject({
      stale: true,
      deliver: false,
    });
    expect(evaluateRules(old, [rule({ type: 'ignition_on', notify_stale: true })], c).alerts[0]).toMatchObject({
      stale: true,
      deliver: true,
    });
  });

  it('min duration: too short never fires, still going fires once it lasted, otherwise pending', () => {
    const r = rule({ min_duration_s: 60 });
    const enter = ev('geofence_enter', MON_NOON);
    const shortVisit = [enter, ev('geofence_exit', MON_NOON + 30_000)];
    expect(evaluateRules(shortVisit, [r], ctx({ now: MON_NOON + H })).alerts).toEqual([]);
    const longVisit = [enter, ev('geofence_exit', MON_NOON + 120_000)];
    expect(evaluateRules(longVisit, [r], ctx({ now: MON_NOON + H })).alerts).toHaveLength(1);
    // Exit of another fence does not end this visit.
    const other = [enter, ev('geofence_exit', MON_NOON + 30_000, { key: '8' })];
    expect(evaluateRules(other, [r], ctx({ now: MON_NOON + 20_000 }))).toEqual({ alerts: [], pending: 1 });
    expect(evaluateRules(other, [r], ctx({ now: MON_NOON + 61_000 })).alerts).toHaveLength(1);
    // An event carrying its own duration is judged by it.
    const exitRule = rule({ type: 'geofence_exit', min_duration_s: 60 });
    expect(
      evaluateRules([ev('geofence_exit', MON_NOON, { attributes: { duration_s: 59 } })], [exitRule], ctx()).alerts,
    ).toEqual([]);
    expect(
      evaluateRules([ev('geofence_exit', MON_NOON, { attributes: { duration_s: 61 } })], [exitRule], ctx()).alerts,
    ).toHaveLength(1);
  });

  it('property: the alerts do not depend on the order or batching of the events', () => {
    const arbEvent = fc.record({
      device: fc.constantFrom(1, 2),
      type: fc.constantFrom('geofence_enter', 'geofence_exit', 'ignition_on', 'crash'),
      t: fc.integer({ min: 0, max: 3600 }),
      key: fc.constantFrom('7', '8'),
    });
    const rules = [
      rule({ id: 1, cooldown_s: 300 }),
      rule({ id: 2, type: 'ignition_on', cooldown_s: 120 }),
      rule({ id: 3, type: 'alarm' }),
      rule({ id: 4, type: 'geofence_exit', geofence: 8 }),
    ];
    fc.assert(
      fc.property(
        fc.uniqueArray(arbEvent, { selector: (e) => `${e.device}${e.type}${e.t}${e.key}` }),
        fc.integer(),
        (raw, seed) => {
          const events = raw.map((r) => ev(r.type, MON_NOON + r.t * 1000, { device: r.device, key: r.key }));
          const shuffled = [...events].sort((a, b) => ((a.time * 31 + seed) % 97) - ((b.time * 31 + seed) % 97));
          const key = (a: { rule: number; device: number; eventTime: number; eventType: string; eventKey: string }) =>
            `${a.rule}|${a.device}|${a.eventTime}|${a.eventType}|${a.eventKey}`;
          const a = evaluateRules(events, rules, ctx()).alerts.map(key).sort();
          const b = evaluateRules(shuffled, rules, ctx()).alerts.map(key).sort();
          expect(b).toEqual(a);
        },
      ),
    );
  });
});

describe('silenceAlerts', () => {
  const activity = [
    { ...VAN, lastSeenAt: MON_NOON - 20 * 60_000, lastFixAt: MON_NOON - 40 * 60_000, lon: 25, lat: 54 },
    { ...TRUCK, lastSeenAt: MON_NOON - 60_000, lastFixAt: MON_NOON - 60_000, lon: 25, lat: 54 },
  ];
  const c = { now: MON_NOON, timeZone: 'UTC', staleAfterS: 900, recorded: new Map() };

  it('offline and no_fix fire once per silence, keyed by when it began', () => {
    const offline = silenceAlerts(activity, [rule({ type: 'offline', after_minutes: 15 })], c);
    expect(offline).toHaveLength(1);
    expect(offline[0]).toMatchObject({
      device: 1,
      eventType: 'offline',
      eventTime: MON_NOON - 20 * 60_000,
      eventKey: '',
    });
    // Later runs produce the same identity.
    const later = silenceAlerts(activity, [rule({ type: 'offline', after_minutes: 15 })], { ...c, now: MON_NOON + H });
    expect(later.filter((a) => a.device === 1)).toEqual(offline);
    const noFix = silenceAlerts(activity, [rule({ type: 'no_fix', after_minutes: 30 })], c);
    expect(noFix.map((a) => [a.device, a.eventTime])).toEqual([[1, MON_NOON - 40 * 60_000]]);
    expect(silenceAlerts(activity, [rule({ type: 'offline', after_minutes: 30 })], c)).toEqual([]);
  });
});

describe('alertMessage', () => {
  it('names the device and the zone', () => {
    const [a] = evaluateRules(
      [
        ev('overspeed_start', MON_NOON, {
          key: 'zone:9',
          attributes: { geofence_name: 'School', speed: 52, limit: 30 },
        }),
      ],
      [rule({ type: 'overspeed', name: 'School zone' })],
      ctx(),
    ).alerts;
    expect(alertMessage({ name: 'School zone' }, VAN, a!)).toBe(
      'School zone: Van 1 speeding at 52 km/h (limit 30) in School',
    );
    const [b] = evaluateRules(
      [ev('geofence_enter', MON_NOON, { device: 2, attributes: { geofence_name: 'Depot' } })],
      [rule()],
      ctx(),
    ).alerts;
    expect(alertMessage({ name: 'Depot' }, TRUCK, b!)).toBe(`Depot: ${TRUCK.imei} entered Depot`);
  });

  it('the devices rules on derived events watch: listed ones, none for silence rules, null when one watches all', () => {
    expect(
      watchedDeviceRefs([
        rule({ id: 1, devices: [VAN.imei] }),
        rule({ id: 2, type: 'ignition_on', devices: ['2', VAN.imei] }),
        rule({ id: 3, type: 'offline', devices: null }),
      ]),
    ).toEqual(['2', VAN.imei]);
    expect(watchedDeviceRefs([rule({ id: 1, devices: [VAN.imei] }), rule({ id: 2, type: 'alarm' })])).toBeNull();
    expect(watchedDeviceRefs([rule({ type: 'no_fix' })])).toEqual([]);
  });
});
