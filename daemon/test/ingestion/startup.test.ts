/** Start-up fails clearly (and leaves nothing behind) when Redis is away or the port is taken. */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startIngestion } from '../../src/ingestion/server.js';
import { createTestRedis, freePort, REDIS_URL } from './support.js';

let r: Awaited<ReturnType<typeof createTestRedis>>;

beforeAll(async () => {
  r = await createTestRedis();
});

afterAll(async () => {
  await r?.cleanup();
});

const lookup = async () => ({ known: false as const });

describe('start-up', () => {
  it('rejects when Redis cannot be reached', async () => {
    const port = await freePort();
    await expect(
      startIngestion({
        instanceId: 'start-noredis',
        redisUrl: `redis://127.0.0.1:${port}`,
        lookup,
        tcpPort: 0,
        udpPort: null,
      }),
    ).rejects.toThrow(/Redis at 127.0.0.1:\d+ is not reachable/);
  });

  it('rejects when the TCP port is taken, and removes the heartbeat it had written', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
    const taken = (blocker.address() as { port: number }).port;
    try {
      await expect(
        startIngestion({
          instanceId: 'start-taken',
          redisUrl: REDIS_URL,
          redisPrefix: r.prefix,
          lookup,
          host: '127.0.0.1',
          tcpPort: taken,
          udpPort: null,
        }),
      ).rejects.toThrow(/EADDRINUSE/);
      expect(await r.redis.exists(r.keys.heartbeat('start-taken'))).toBe(0);
    } finally {
      await new Promise((res) => blocker.close(res));
    }
  });
});
