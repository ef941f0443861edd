/** `daemon replay-dead`: the command line around replay-dead.ts (Redis from the configuration). */
import { loadConfigOrExitCode, redisKeysOf, redisTargetOf } from '../config.js';
import { createRedisClient } from '../contract/index.js';
import { deadLetters, parseReplayArgs, REPLAY_DEAD_USAGE, replayDead } from './replay-dead.js';

export async function runReplayDead(argv: string[]): Promise<number> {
  const cmd = parseReplayArgs(argv);
  if (cmd.kind === 'help' || cmd.kind === 'error') {
    process.stderr.write(`${cmd.kind === 'error' ? `${cmd.message}\n` : ''}${REPLAY_DEAD_USAGE}\n`);
    return cmd.kind === 'help' ? 0 : 2;
  }
  const config = loadConfigOrExitCode();
  if (config === 2) return 2;
  const keys = redisKeysOf(config);
  const redis = createRedisClient(redisTargetOf(config), { maxRetriesPerRequest: 3 });
  const print = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);
  try {
    if (cmd.kind === 'list') {
      for await (const d of deadLetters(redis, keys)) {
        if ('unreadable' in d) print({ id: d.id, unreadable: d.unreadable });
        else {
          const { id, sourceId, imei, cause, error, failedAt } = d;
          print({
            id,
            partition: d.partition,
            failedAt: new Date(failedAt).toISOString(),
            imei,
            cause,
            error,
            sourceId,
          });
        }
      }
      return 0;
    }
    const r = await replayDead(redis, keys, cmd.kind === 'all' ? { all: true } : { ids: cmd.ids });
    for (const x of r.replayed) print({ replayed: x.id, entry: x.entry, imei: x.imei });
    for (const x of r.skipped) print({ skipped: x.id, reason: x.reason });
    for (const id of r.notFound) print({ notFound: id });
    process.stderr.write(
      `replayed ${r.replayed.length} dead letter(s) onto the telemetry stream; skipped ${r.skipped.length}; not found ${r.notFound.length}\n`,
    );
    return r.skipped.length + r.notFound.length > 0 ? 1 : 0;
  } finally {
    redis.disconnect();
  }
}
