/**
 * Per-device mutual exclusion across every Directus instance of a deployment: a PostgreSQL
 * session advisory lock per device, taken with try-and-back-off on one connection the extension
 * keeps for locks only (so waiting never occupies Directus's pool), plus an in-process queue per
 * device (advisory locks are re-entrant within a session, so they cannot separate two callers
 * of the same process).
 *
 * Kept on globalThis like the Redis clients: a reload must not leak the connection.
 */
import type { Knex } from 'knex';

/** First key of the two-int advisory lock form: "a device's commands". */
const DEVICE_LOCK_NS = 0x666c6364; // "flcd"

export class DeviceLocks {
  private conn: unknown | null = null;
  private connecting: Promise<unknown> | null = null;
  private readonly local = new Map<string, Promise<void>>();
  private closed = false;

  constructor(private readonly db: Knex) {}

  async run<T>(device: string | number, fn: () => Promise<T>): Promise<T> {
    const key = String(device);
    const previous = this.local.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.local.set(key, tail);
    await previous;
    try {
      await this.acquire(key);
      try {
        return await fn();
      } finally {
        await this.query('SELECT pg_advisory_unlock(?, hashtext(?)) AS ok', key).catch(() => this.drop());
      }
    } finally {
      release();
      if (this.local.get(key) === tail) this.local.delete(key);
    }
  }

  private async acquire(key: string): Promise<void> {
    for (let backoff = 2; ; backoff = Math.min(backoff * 2, 50)) {
      const rows = await this.query('SELECT pg_try_advisory_lock(?, hashtext(?)) AS ok', key);
      if (rows[0]?.ok === true) return;
      await new Promise((r) => setTimeout(r, backoff));
    }
  }

  private async connection(): Promise<unknown> {
    if (this.closed) throw new Error('device locks are closed');
    if (this.conn) return this.conn;
    this.connecting ??= this.db.client.acquireConnection().then(
      (c: unknown) => {
        this.conn = c;
        this.connecting = null;
        return c;
      },
      (err: unknown) => {
        this.connecting = null;
        throw err;
      },
    );
    return this.connecting;
  }

  private async query(sql: string, key: string): Promise<Array<{ ok: boolean }>> {
    const conn = await this.connection();
    try {
      const res = await this.db.raw(sql, [DEVICE_LOCK_NS, key]).connection(conn);
      return res.rows as Array<{ ok: boolean }>;
    } catch (err) {
      // A broken session has lost its locks anyway; start over on a fresh connection.
      this.drop();
      throw err;
    }
  }

  /**
   * Gives the connection back to the pool. Session locks outlive a release, so they are dropped
   * first; if that fails the session is broken and the server frees its locks with it.
   */
  private drop(): void {
    const conn = this.conn;
    this.conn = null;
    if (!conn) return;
    void this.db
      .raw('SELECT pg_advisory_unlock_all()')
      .connection(conn)
      .catch(() => {})
      .finally(() => Promise.resolve(this.db.client.releaseConnection(conn)).catch(() => {}));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.drop();
  }
}

const KEY = Symbol.for('fleet.commands.deviceLocks');
type Holder = { [KEY]?: DeviceLocks };

export function deviceLocks(db: Knex): DeviceLocks {
  const holder = globalThis as Holder;
  const existing = holder[KEY];
  if (existing) return existing;
  const created = new DeviceLocks(db);
  holder[KEY] = created;
  return created;
}

export async function closeDeviceLocks(): Promise<void> {
  const holder = globalThis as Holder;
  const existing = holder[KEY];
  delete holder[KEY];
  await existing?.close();
}
