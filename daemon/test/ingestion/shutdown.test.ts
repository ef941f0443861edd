/**
 * `daemon ingest` as a real process: SIGTERM while devices are sending stops accepting, finishes
 * the writes in flight and their acks, deregisters every device, removes the heartbeat and exits 0.
 * Every frame a device saw acknowledged is in the stream.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeConnectionEvent, decodeTelemetryEntry } from '../../src/contract/index.js';
import { avlAck } from '../../src/protocol/index.js';
import { avlFrame, createTestDatabase, createTestRedis, freePort, RawDevice, REDIS_URL } from './support.js';

const IMEIS = Array.from({ length: 6 }, (_, i) => String(356307042442000 + i));
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let r: Awaited<ReturnType<typeof createTestRedis>>;

beforeAll(async () => {
  db = await createTestDatabase();
  r = await createTestRedis();
  await db.knex('devices').insert(IMEIS.map((imei) => ({ imei, name: imei, enabled: true })));
});

afterAll(async () => {
  await r?.cleanup();
  await db?.drop();
});

/** A stop-and-wait device: sends the next frame only after the previous ack; stops when closed. */
async function sendUntilClosed(d: RawDevice, acked: Buffer[]): Promise<void> {
  for (;;) {
    const frame = avlFrame(3);
    d.send(frame);
    let answer: Buffer;
    try {
      answer = await d.read(4);
    } catch {
      return;
    }
    expect(answer).toEqual(avlAck(3));
    acked.push(frame);
  }
}

describe('daemon ingest process', () => {
  it('SIGTERM loses nothing that was acknowledged and exits 0', async () => {
    const [port, metricsPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, ['--import', 'tsx', join(process.cwd(), 'daemon/src/cli.ts'), 'ingest'], {
      env: {
        ...process.env,
        INSTANCE_ID: 'shutdown-test',
        REDIS: REDIS_URL,
        FLEET_REDIS_PREFIX: r.prefix,
        DB_HOST: db.connection.host,
        DB_PORT: String(db.connection.port),
        DB_DATABASE: db.connection.database,
        DB_USER: db.connection.user,
        DB_PASSWORD: db.connection.password,
        INGEST_HOST: '127.0.0.1',
        INGEST_PORT: String(port),
        INGEST_METRICS_PORT: String(metricsPort),
        LOG_LEVEL: 'info',
        LOG_STYLE: 'raw',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on('data', (d: Buffer) => {
          log += d.toString();
          if (log.includes('ingestion listening')) resolve();
        });
        child.stderr?.on('data', (d: Buffer) => {
          log += d.toString();
        });
        exited.then((code) => reject(new Error(`daemon exited early (${code}):\n${log}`)));
      });

      const acked: Buffer[] = [];
      const devices = await Promise.all(IMEIS.map(() => RawDevice.connect(port)));
      for (const [i, d] of devices.entries()) expect(await d.login(IMEIS[i] as string)).toBe(1);
      expect(await r.redis.hlen(r.keys.connectionsRegistry)).toBe(IMEIS.length);
      const loops = devices.map((d) => sendUntilClosed(d, acked));
      while (acked.length < 60) await new Promise((res) => setTimeout(res, 10));

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await Promise.all(loops);

      const stored = ((await r.redis.xrangeBuffer(r.keys.telemetryAvl, '-', '+')) as [Buffer, Buffer[]][]).map(
        ([, f]) => decodeTelemetryEntry(f).frame.toString('hex'),
      );
      const inStream = new Set(stored);
      const missing = acked.filter((f) => !inStream.has(f.toString('hex')));
      expect(missing).toHaveLength(0);
      expect(acked.length).toBeGreaterThanOrEqual(60);

      expect(await r.redis.hlen(r.keys.connectionsRegistry)).toBe(0);
      expect(await r.redis.exists(r.keys.heartbeat('shutdown-test'))).toBe(0);
      const events = (await r.redis.xrange(r.keys.connectionsEvents, '-', '+')).map(([, f]) =>
        decodeConnectionEvent(f),
      );
      expect(events.filter((e) => e.type === 'disconnected' && e.reason === 'shutdown')).toHaveLength(IMEIS.length);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
