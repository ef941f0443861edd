import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyResponse,
  COMMAND_STATUSES,
  type CommandRow,
  type CommandStatus,
  canAdvance,
  cancel,
  DEFAULT_ALLOW,
  expire,
  foldResponses,
  isTerminal,
  markQueued,
  parseCommandConfig,
  redispatch,
  retry,
} from './index';

const row = (over: Partial<CommandRow> = {}): CommandRow => ({
  id: 1,
  status: 'pending',
  attempts: 1,
  instance_id: null,
  ...over,
});

describe('config', () => {
  it('reads Directus-cast env values and defaults', () => {
    const c = parseCommandConfig({
      REDIS: 'redis://127.0.0.1:6380',
      FLEET_COMMAND_TTL_HOURS: 2,
      FLEET_COMMAND_MAX_ATTEMPTS: '5',
    });
    expect(c.redisUrl).toBe('redis://127.0.0.1:6380');
    expect(c.ttlMs).toBe(7_200_000);
    expect(c.maxAttempts).toBe(5);
    expect(parseCommandConfig({}).maxAttempts).toBe(5);
    expect(c.allowRules.map((r) => r.name)).toEqual([...DEFAULT_ALLOW]);
    expect(c.prefix).toBe('');
  });
  it('builds a URL from REDIS_HOST and turns dispatch off without Redis', () => {
    expect(parseCommandConfig({ REDIS_HOST: 'h', REDIS_PORT: 7000 }).redisUrl).toBe('redis://h:7000');
    expect(parseCommandConfig({}).redisUrl).toBeNull();
    expect(parseCommandConfig({ REDIS: 'redis://x', REDIS_ENABLED: false }).redisUrl).toBeNull();
  });
  it('parses the allow-list and keeps a numeric-looking prefix a string', () => {
    const c = parseCommandConfig({
      FLEET_COMMAND_ALLOW: 'getinfo, setparam 11000-11999|2 ,',
      FLEET_REDIS_PREFIX: 1234,
    });
    expect(c.allowRules).toEqual([
      { name: 'getinfo', ids: null },
      {
        name: 'setparam',
        ids: [
          [11000, 11999],
          [2, 2],
        ],
      },
    ]);
    expect(c.prefix).toBe('1234');
    expect(() => parseCommandConfig({ FLEET_COMMAND_ALLOW: 'getinfo 5' })).toThrow(/FLEET_COMMAND_ALLOW/);
  });
  it('names the bad variable', () => {
    expect(() => parseCommandConfig({ FLEET_COMMAND_MAX_ATTEMPTS: 'lots' })).toThrow(/FLEET_COMMAND_MAX_ATTEMPTS/);
  });
});

describe('lifecycle', () => {
  it('queues only the current attempt of a pending command', () => {
    expect(markQueued(row(), 1, 'i1', 0)).toMatchObject({ patch: { status: 'queued', instance_id: 'i1' } });
    expect(markQueued(row({ status: 'sent' }), 1, 'i1', 0)).toHaveProperty('ignore');
    expect(markQueued(row({ attempts: 2 }), 1, 'i1', 0)).toHaveProperty('ignore');
  });

  it('records sent and answered with their times and the reply', () => {
    const sent = applyResponse(
      row({ status: 'queued' }),
      { outcome: 'sent', attempt: 1, response: '', error: '', at: 1000, instance: 'i1' },
      3,
    );
    expect(sent).toEqual({
      patch: { status: 'sent', sent_at: '1970-01-01T00:00:01.000Z', instance_id: 'i1', error: null },
      redispatch: false,
    });
    const answered = applyResponse(
      row({ status: 'sent', sent_at: 'x' }),
      { outcome: 'answered', attempt: 1, response: 'Ver:03.28', error: '', at: 2000, instance: 'i1' },
      3,
    );
    expect(answered).toMatchObject({
      patch: { status: 'answered', response: 'Ver:03.28', answered_at: '1970-01-01T00:00:02.000Z' },
    });
    expect('patch' in answered && 'sent_at' in answered.patch).toBe(false);
  });

  it('fills sent_at from the answer when the sent report was lost', () => {
    const d = applyResponse(
      row({ status: 'queued' }),
      { outcome: 'answered', attempt: 1, response: 'ok', error: '', at: 5, instance: 'i' },
      3,
    );
    expect(d).toMatchObject({ patch: { sent_at: '1970-01-01T00:00:00.005Z' } });
  });

  it('re-dispatches on not_held and fails once attempts are spent', () => {
    const r1 = applyResponse(
      row({ status: 'queued', instance_id: 'i1' }),
      { outcome: 'not_held', attempt: 1, response: '', error: '', at: 0, instance: 'i1' },
      3,
    );
    expect(r1).toMatchObject({ patch: { status: 'pending', attempts: 2, instance_id: null }, redispatch: true });
    const r3 = redispatch(row({ status: 'sent', attempts: 3 }), 'instance i1 stopped', 3);
    expect(r3).toMatchObject({ patch: { status: 'failed' }, redispatch: false });
    expect('patch' in r3 && r3.patch.error).toMatch(/instance i1 stopped; gave up after 3/);
  });

  it('cancels only pending or queued, retries only failed or expired', () => {
    expect(cancel(row({ status: 'queued' }))).toMatchObject({ patch: { status: 'cancelled' } });
    expect(cancel(row({ status: 'sent' }))).toHaveProperty('ignore');
    expect(retry(row({ status: 'answered' }), 0, 1000)).toHaveProperty('ignore');
    const r = retry(row({ status: 'failed', attempts: 3, expires_at: new Date(500) }), 1000, 60_000);
    expect(r).toMatchObject({
      patch: { status: 'pending', attempts: 4, expires_at: new Date(61_000).toISOString() },
      redispatch: true,
    });
    const keep = retry(row({ status: 'expired', expires_at: new Date(5000).toISOString() }), 1000, 60_000);
    expect('patch' in keep && 'expires_at' in keep.patch).toBe(false);
  });

  it('expires only unsent commands whose time has passed', () => {
    expect(expire(row({ expires_at: new Date(999) }), 1000)).toMatchObject({ patch: { status: 'expired' } });
    expect(expire(row({ expires_at: new Date(1001) }), 1000)).toHaveProperty('ignore');
    expect(expire(row({ status: 'sent', expires_at: new Date(0) }), 1000)).toHaveProperty('ignore');
  });

  it('never moves a command backwards or out of a final state, whatever arrives in whatever order', () => {
    const outcome = fc.constantFrom('sent', 'answered', 'failed', 'expired', 'not_held' as const);
    const event = fc.record({ outcome, attempt: fc.integer({ min: 1, max: 4 }), at: fc.nat() });
    const status = fc.constantFrom(...COMMAND_STATUSES);
    fc.assert(
      fc.property(
        status,
        fc.integer({ min: 1, max: 4 }),
        fc.array(event, { maxLength: 12 }),
        (start, attempts, events) => {
          let cur: CommandRow = row({ status: start, attempts });
          for (const e of events) {
            const d = applyResponse(cur, { ...e, response: 'r', error: '', instance: 'i' }, 4);
            if (!('patch' in d)) continue;
            const next = { ...cur, ...d.patch } as CommandRow;
            // Nothing leaves a final state, and a stale attempt never changes anything.
            expect(isTerminal(cur.status)).toBe(false);
            expect(e.attempt).toBe(cur.attempts);
            // Forward, or back to pending only as a new attempt.
            if (next.status === 'pending') expect(next.attempts).toBe(cur.attempts + 1);
            else expect(canAdvance(cur.status, next.status as CommandStatus) || next.status === cur.status).toBe(true);
            cur = next;
          }
        },
      ),
    );
  });
});

describe('foldResponses', () => {
  const r = (outcome: 'sent' | 'answered' | 'not_held' | 'failed', attempt: number, at: number, response = '') => ({
    outcome,
    attempt,
    at,
    response,
    error: '',
    instance: 'i1',
  });

  it('merges sent and answered into one write with both times', () => {
    const f = foldResponses(row({ status: 'queued' }), [r('sent', 1, 1000), r('answered', 1, 2000, 'ok')], 3);
    expect(f).toEqual({
      patch: {
        status: 'answered',
        sent_at: '1970-01-01T00:00:01.000Z',
        answered_at: '1970-01-01T00:00:02.000Z',
        instance_id: 'i1',
        response: 'ok',
        error: null,
      },
      redispatch: false,
      applied: 2,
    });
  });

  it('gives the same final row as applying outcomes one by one', () => {
    const outcome = fc.constantFrom('sent', 'answered', 'failed', 'not_held' as const);
    fc.assert(
      fc.property(
        fc.array(fc.record({ outcome, attempt: fc.integer({ min: 1, max: 3 }), at: fc.nat() }), { maxLength: 8 }),
        (events) => {
          const rs = events.map((e) => r(e.outcome, e.attempt, e.at, 'x'));
          let oneByOne: CommandRow = row({ status: 'queued' });
          for (const e of rs) {
            const d = applyResponse(oneByOne, e, 3);
            if ('patch' in d) oneByOne = { ...oneByOne, ...d.patch } as CommandRow;
          }
          const f = foldResponses(row({ status: 'queued' }), rs, 3);
          expect({ ...row({ status: 'queued' }), ...f.patch }).toEqual(oneByOne);
        },
      ),
    );
  });
});
