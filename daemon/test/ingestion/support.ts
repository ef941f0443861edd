/**
 * Test helpers for ingestion (on top of the shared harness): a private redis-server (for outage tests), and a raw-socket "device" that reads exact byte counts.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import type { Knex } from 'knex';
import { beforeAll } from 'vitest';
import {
  TEST_REDIS_URL as REDIS_URL,
  type TestDatabase,
  type TestRedis,
  useTestStack,
  waitFor,
} from '../../../test/support/index.js';
import { knexDeviceLookup } from '../../src/ingestion/devices.js';
import { type Ingestion, type IngestionOptions, startIngestion } from '../../src/ingestion/server.js';
import { knexTakeoverRecorder } from '../../src/ingestion/takeover.js';
import { type EncodableRecord, encodeAvlFrame, encodeImeiLogin } from '../../src/protocol/index.js';

export { TEST_REDIS_URL as REDIS_URL } from '../../../test/support/index.js';

export function uid(): string {
  return randomBytes(5).toString('hex');
}

export { createTestDatabase, createTestRedis } from '../../../test/support/index.js';

/**
 * Ingestion as the tests run it: TCP on a free port of 127.0.0.1, no UDP, and only the devices in
 * `knex` accepted; `options` may override any of these.
 */
export function startTestIngestion(
  knex: Knex,
  options: Pick<IngestionOptions, 'instanceId' | 'redisUrl'> & Partial<IngestionOptions>,
): Promise<Ingestion> {
  return startIngestion({
    lookup: knexDeviceLookup(knex, { unknownDevices: 'refuse' }),
    recordTakeover: knexTakeoverRecorder(knex),
    host: '127.0.0.1',
    tcpPort: 0,
    udpPort: null,
    ...options,
  });
}

/** The ingestions and raw devices a test file opens, so that one afterAll closes them all. */
export class Opened {
  private readonly ingestions: Ingestion[] = [];
  private readonly devices: RawDevice[] = [];

  /** `startTestIngestion`, stopped by `close()`. */
  async ingestion(knex: Knex, options: Parameters<typeof startTestIngestion>[1]): Promise<Ingestion> {
    const ing = await startTestIngestion(knex, options);
    this.ingestions.push(ing);
    return ing;
  }

  /** A raw device connected to `port`, closed by `close()`. */
  async device(port: number, opts?: Parameters<typeof RawDevice.connect>[1]): Promise<RawDevice> {
    const d = await RawDevice.connect(port, opts);
    this.devices.push(d);
    return d;
  }

  /** Closes the devices, then stops the ingestions. */
  async close(): Promise<void> {
    for (const d of this.devices) d.close();
    for (const ing of this.ingestions) await ing.stop();
  }
}

/** What a test file's ingestions run on, made by `useIngestionStack`. */
export interface IngestionStack {
  readonly db: TestDatabase;
  readonly r: TestRedis;
  readonly opened: Opened;
  /** `startTestIngestion` on the file's database and Redis prefix (shared Redis), stopped after the file. */
  start(instanceId: string, extra?: Partial<IngestionOptions>): Promise<Ingestion>;
}

/**
 * Registers the file's beforeAll (a database whose `devices` holds `devices`, a Redis prefix) and
 * afterAll (the file's devices and ingestions closed, then the database and prefix dropped).
 * Fields are usable from the file's own beforeAll on.
 */
export function useIngestionStack(devices: Record<string, unknown>[]): IngestionStack {
  const stack = useTestStack();
  const opened = new Opened();
  beforeAll(async () => {
    stack.started(opened, (o) => o.close());
    if (devices.length > 0) await stack.db.knex('devices').insert(devices);
  });
  return {
    get db() {
      return stack.db;
    },
    get r() {
      return stack.redis;
    },
    opened,
    start: (instanceId, extra = {}) =>
      opened.ingestion(stack.db.knex, { instanceId, redisUrl: REDIS_URL, redisPrefix: stack.redis.prefix, ...extra }),
  };
}

/** A self-signed certificate for `localhost` made by openssl in a temporary directory. */
export function selfSignedCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ingest-tls-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'].concat([
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ]),
      { stdio: 'ignore' },
    );
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export { freePort, type OwnRedis, startOwnRedis } from '../../../test/support/index.js';

/** A raw TCP "device": bytes are collected so a test can wait for an exact count. */
export class RawDevice {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;
  readonly whenClosed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.notify();
    });
    socket.on('error', () => {});
    this.whenClosed = new Promise((r) =>
      socket.on('close', () => {
        this.closed = true;
        this.notify();
        r();
      }),
    );
  }

  /**
   * `localAddress` (any of 127.0.0.0/8) lets one machine play devices at several addresses;
   * `tls` connects through TLS, trusting `ca`.
   */
  static async connect(port: number, opts: { localAddress?: string; tls?: { ca: string } } = {}): Promise<RawDevice> {
    const socket = opts.tls
      ? tlsConnect({ host: '127.0.0.1', port, ca: opts.tls.ca, servername: 'localhost' })
      : tcpConnect({ host: '127.0.0.1', port, localAddress: opts.localAddress });
    await new Promise<void>((resolve, reject) => {
      socket.once(opts.tls ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    return new RawDevice(socket);
  }

  private notify() {
    for (const w of this.waiters.splice(0)) w();
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Bytes received and not yet read. */
  get available(): number {
    return this.buf.length;
  }

  /** Resolves with exactly n bytes, or rejects if the socket closes first. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.closed) throw new Error(`socket closed after ${this.buf.length} of ${n} bytes`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Logs in and returns the one-byte answer. */
  async login(imei: string): Promise<number> {
    this.send(encodeImeiLogin(imei));
    return (await this.read(1))[0] as number;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Polls until `check` returns a truthy value (bounded; not a timing assertion). */
export function eventually<T>(check: () => Promise<T> | T, what: string, limitMs = 10_000): Promise<NonNullable<T>> {
  return waitFor(what, async () => (await check()) || undefined, limitMs, 20) as Promise<NonNullable<T>>;
}

let fix = 1_700_000_000_000;
/** A Codec 8E frame with `n` distinct records. */
export function avlFrame(n = 2, codec = 0x8e): Buffer {
  const records: EncodableRecord[] = [];
  for (let i = 0; i < n; i++) {
    fix += 1000;
    records.push({
      timestamp: fix,
      priority: 0,
      longitude: 25.2598066,
      latitude: 54.7009616,
      altitude: 104,
      angle: 41,
      satellites: 9,
      speed: 42,
      eventIoId: 0,
      io: { ids: [239, 66], values: [1, 24079] },
    });
  }
  return encodeAvlFrame(codec, records);
}

/** Sends one datagram and resolves with the first reply (or null after `waitMs`). */
export async function udpRoundTrip(port: number, datagram: Buffer, waitMs = 1500): Promise<Buffer | null> {
  const sock = createSocket('udp4');
  try {
    return await new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), waitMs);
      sock.once('message', (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      sock.send(datagram, port, '127.0.0.1');
    });
  } finally {
    sock.close();
  }
}
