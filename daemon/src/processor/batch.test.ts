/**
 * The batch steps on their own: triage of entries as ingestion writes them, isolation of refused
 * items by halving, and acknowledging against a real Redis (with and without failure counts).
 */
import { describe, expect, it } from 'vitest';
import { useTestRedis } from '../../../test/support/index.js';
import { newImei, telemetryFields, track } from '../../test/processor/support.js';
import { GROUPS } from '../contract/index.js';
import { acknowledge, isolateRejections, triage, type WriteAttempt } from './batch.js';
import type { RawEntry } from './stream.js';

const raw = (id: string, fields: (string | Buffer)[] | null): RawEntry => ({
  stream: 'telemetry:avl',
  id,
  fields: fields === null ? null : fields.map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(f))),
  deliveries: 1,
});

describe('triage', () => {
  it('sorts entries into gone, dead on arrival (by cause) and decoded, keeping each raw entry', () => {
    const imei = newImei();
    const good = telemetryFields(imei, track(3));
    const badFrame = telemetryFields(imei, track(1)).map((f) =>
      Buffer.isBuffer(f) && f.length > 20 ? Buffer.from('000000000000000a08010000deadbeef', 'hex') : f,
    );
    const invalid = telemetryFields(imei, track(1)).slice(0, 4);
    const t = triage([raw('1-0', good), raw('2-0', null), raw('3-0', badFrame), raw('4-0', invalid)]);
    expect(t.gone).toEqual(['2-0']);
    expect(t.dead.map((d) => [d.raw.id, d.cause])).toEqual([
      ['3-0', 'undecodable'],
      ['4-0', 'invalid'],
    ]);
    expect(t.decoded.map((d) => [d.raw.id, d.entry.imei, d.entry.records.length])).toEqual([['1-0', imei, 3]]);
  });
});

describe('isolateRejections', () => {
  /** A database refusing any attempt that contains one of `bad`; records the attempts it saw. */
  function database(bad: Set<number>) {
    const attempts: number[][] = [];
    const committed: number[] = [];
    const attempt = async (items: readonly number[]): Promise<WriteAttempt> => {
      attempts.push([...items]);
      const refused = items.find((i) => bad.has(i));
      if (refused !== undefined) return { kind: 'rejected', cause: 'rejected', error: `bad ${refused}` };
      committed.push(...items);
      return { kind: 'committed' };
    };
    return { attempt, attempts, committed };
  }

  it('commits a clean batch in one attempt', async () => {
    const db = database(new Set());
    expect(await isolateRejections([1, 2, 3], db.attempt)).toEqual([]);
    expect(db.attempts).toEqual([[1, 2, 3]]);
  });

  it('pins each refusal to its own item and commits all the others', async () => {
    const db = database(new Set([2, 7]));
    const items = [1, 2, 3, 4, 5, 6, 7, 8];
    const refused = await isolateRejections(items, db.attempt);
    expect(refused).toEqual([
      { item: 2, cause: 'rejected', error: 'bad 2' },
      { item: 7, cause: 'rejected', error: 'bad 7' },
    ]);
    expect(db.committed.sort((a, b) => a - b)).toEqual([1, 3, 4, 5, 6, 8]);
  });

  it('keeps the cause the attempt gave', async () => {
    const refused = await isolateRejections(['a'], async () => ({
      kind: 'rejected',
      cause: 'unknown_device',
      error: 'unknown device IMEI 1',
    }));
    expect(refused).toEqual([{ item: 'a', cause: 'unknown_device', error: 'unknown device IMEI 1' }]);
  });
});

describe('acknowledge', () => {
  const r = useTestRedis();

  async function pendingStream(n: number) {
    const stream = `${r.prefix}${Math.random().toString(36).slice(2, 8)}:avl`;
    await r.redis.xgroup('CREATE', stream, GROUPS.processors, '0', 'MKSTREAM');
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await r.redis.xadd(stream, '*', 'k', String(i)))!);
    await r.redis.xreadgroup('GROUP', GROUPS.processors, 'c', 'COUNT', n, 'STREAMS', stream, '>');
    return { stream, ids, failures: `${stream}:failures` };
  }
  const pendingCount = async (stream: string) =>
    Number(((await r.redis.xpending(stream, GROUPS.processors)) as [number])[0]);

  it('acknowledges the ids, drops their failure counts and says whether others remain', async () => {
    const { stream, ids, failures } = await pendingStream(3);
    await r.redis.hset(failures, ids[0]!, 1, ids[2]!, 2);
    expect(await acknowledge(r.redis, stream, failures, [ids[0]!, ids[1]!], true)).toEqual({
      kind: 'acknowledged',
      failuresLeft: true,
    });
    expect(await pendingCount(stream)).toBe(1);
    expect(await r.redis.hkeys(failures)).toEqual([ids[2]]);
    expect(await acknowledge(r.redis, stream, failures, [ids[2]!], true)).toEqual({
      kind: 'acknowledged',
      failuresLeft: false,
    });
    expect(await pendingCount(stream)).toBe(0);
  });

  it('skips the failure counts when none may exist', async () => {
    const { stream, ids, failures } = await pendingStream(1);
    await r.redis.hset(failures, 'other', 1);
    expect(await acknowledge(r.redis, stream, failures, ids, false)).toEqual({
      kind: 'acknowledged',
      failuresLeft: false,
    });
    expect(await pendingCount(stream)).toBe(0);
    expect(await r.redis.hlen(failures)).toBe(1);
  });
});
