/**
 * `daemon replay-dead [--list | --all | --id <id>…]`: puts dead letters back on `telemetry:avl`
 * (after a parser fix, or once an unknown device was created) and removes them from
 * `telemetry:dead`, each in one MULTI. With several telemetry partitions, each has its own dead
 * stream, and a letter goes back onto the partition it came from (same hash tag: one slot). Idempotent: a replayed letter is gone from the dead stream,
 * and a frame stored twice adds no row (the positions natural key), so replaying again stores
 * nothing twice. A letter that fails again becomes a new dead letter.
 */
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import {
  type DeadLetter,
  decodeDeadLetter,
  encodeTelemetryEntry,
  type RedisKeys,
  TelemetryEntry,
  type TelemetryPartition,
} from '../contract/index.js';
import { checkAvlFrame, decodeUdpDatagram } from '../protocol/index.js';

export const REPLAY_DEAD_USAGE = `usage: daemon replay-dead --list            print the dead letters (id, time, IMEI, cause, error)
       daemon replay-dead --all             replay every dead letter
       daemon replay-dead --id <id> [--id …] replay the dead letters with these ids (as --list prints them)`;

export type ReplayCommand =
  | { kind: 'list' }
  | { kind: 'all' }
  | { kind: 'ids'; ids: string[] }
  | { kind: 'help' }
  | { kind: 'error'; message: string };

export function parseReplayArgs(argv: string[]): ReplayCommand {
  let values: { list?: boolean; all?: boolean; id?: string[]; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        list: { type: 'boolean' },
        all: { type: 'boolean' },
        id: { type: 'string', multiple: true },
        help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    return { kind: 'error', message: err instanceof Error ? err.message : String(err) };
  }
  if (values.help) return { kind: 'help' };
  const chosen = [values.list, values.all, values.id !== undefined].filter(Boolean).length;
  if (chosen !== 1) return { kind: 'error', message: 'give exactly one of --list, --all, --id' };
  if (values.list) return { kind: 'list' };
  if (values.all) return { kind: 'all' };
  const ids = values.id ?? [];
  const bad = ids.find((id) => !/^\d+-\d+$/.test(id));
  if (bad !== undefined) return { kind: 'error', message: `not a dead-letter id: ${bad}` };
  return { kind: 'ids', ids };
}

export interface StoredDeadLetter extends DeadLetter {
  /** Id in its partition's telemetry:dead. */
  id: string;
  partition: number;
}

type Unreadable = { id: string; partition: number; unreadable: string };

export interface ReplayOutcome {
  /** Dead-letter id → the new telemetry:avl entry id. */
  replayed: { id: string; entry: string; imei: string }[];
  /** Letters that cannot become a telemetry entry (e.g. no IMEI), left where they are. */
  skipped: { id: string; reason: string }[];
  notFound: string[];
}

function parseStored(partition: number, [id, fields]: [Buffer, Buffer[]]): StoredDeadLetter | Unreadable {
  try {
    return { id: id.toString(), partition, ...decodeDeadLetter(fields) };
  } catch (err) {
    return { id: id.toString(), partition, unreadable: (err as Error).message };
  }
}

/** Every dead letter (of each partition up to `end(partition)`), oldest first per partition, page by page. */
export async function* deadLetters(
  redis: Redis,
  keys: RedisKeys,
  end: (p: TelemetryPartition) => string | undefined = () => '+',
  pageSize = 200,
): AsyncGenerator<StoredDeadLetter | Unreadable> {
  for (const p of keys.telemetry) {
    const last = end(p);
    if (last === undefined) continue;
    let start = '-';
    for (;;) {
      const page = (await redis.xrangeBuffer(p.dead, start, last, 'COUNT', pageSize)) as [Buffer, Buffer[]][];
      for (const e of page) yield parseStored(p.index, e);
      if (page.length < pageSize) break;
      start = `(${page[page.length - 1]![0].toString()}`;
    }
  }
}

/** The codec and record count of a frame, for letters written before they kept the entry's own. */
function frameFacts(frame: Buffer, transport: string): { codec: number; records: number } {
  try {
    if (transport === 'udp') {
      const p = decodeUdpDatagram(frame).packet;
      return { codec: p.codec, records: p.records.length };
    }
    return checkAvlFrame(frame);
  } catch {
    // Still replayable: the processor decodes the frame itself (and dead-letters it again if it must).
    return { codec: 0, records: 0 };
  }
}

/** The telemetry entry a dead letter came from, or why it cannot be rebuilt. */
export function entryOf(d: DeadLetter): TelemetryEntry | string {
  const facts = d.codec === undefined || d.records === undefined ? frameFacts(d.frame, d.transport) : null;
  const parsed = TelemetryEntry.safeParse({
    imei: d.imei,
    codec: d.codec ?? facts?.codec,
    transport: d.transport,
    instance: d.instance || 'replay-dead',
    receivedAt: d.receivedAt ?? d.failedAt,
    records: d.records ?? facts?.records,
    frame: d.frame,
  });
  return parsed.success ? parsed.data : (parsed.error.issues[0]?.message ?? 'not a telemetry entry');
}

export async function replayDead(
  redis: Redis,
  keys: RedisKeys,
  selection: { all: true } | { ids: readonly string[] },
): Promise<ReplayOutcome> {
  const out: ReplayOutcome = { replayed: [], skipped: [], notFound: [] };
  const replay = async (letter: StoredDeadLetter | Unreadable) => {
    const entry = 'unreadable' in letter ? `unreadable dead letter: ${letter.unreadable}` : entryOf(letter);
    if (typeof entry === 'string') {
      out.skipped.push({ id: letter.id, reason: entry });
      return;
    }
    const partition = keys.telemetry[letter.partition]!;
    const res = await redis
      .multi()
      .xadd(partition.avl, '*', ...encodeTelemetryEntry(entry))
      .xdel(partition.dead, letter.id)
      .exec();
    const failed = res?.find(([e]) => e);
    if (!res || failed) throw failed?.[0] ?? new Error('MULTI aborted');
    out.replayed.push({ id: letter.id, entry: String(res[0]![1]), imei: entry.imei });
  };
  if ('all' in selection) {
    // Up to the newest letter at the start: one that fails again while this runs is a new
    // letter after it, and is not replayed twice in one run.
    const newest = new Map<number, string | undefined>();
    for (const p of keys.telemetry) newest.set(p.index, (await redis.xrevrange(p.dead, '+', '-', 'COUNT', 1))[0]?.[0]);
    for await (const letter of deadLetters(redis, keys, (p) => newest.get(p.index))) await replay(letter);
    return out;
  }
  for (const id of new Set(selection.ids)) {
    let found = false;
    for (const p of keys.telemetry) {
      const hit = (await redis.xrangeBuffer(p.dead, id, id)) as [Buffer, Buffer[]][];
      if (hit.length === 0) continue;
      found = true;
      await replay(parseStored(p.index, hit[0]!));
    }
    if (!found) out.notFound.push(id);
  }
  return out;
}
