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

/** The driver's connection knex hands out (node-postgres): several statements in one query give one result each. */
interface PgConnection {
  query(sql: string): Promise<{ rows: Array<{ ok?: boolean }> } | Array<{ rows: Array<{ ok?: boolean }> }>>;
}

export class DeviceLocks {
  private conn: unknown | null = null;
  private connecting: Promise<unknown> | null = null;
  private readonly local = new Map<string, Promise<void>>();
  private closed = false;

  constructor(private readonly db: Knex) {}

  /**
   * Runs `fn` holding the device's lock, with the rows of `reads` (one array per query). The reads
   * go on the lock's connection in the round trip that takes the lock: one simple-protocol query
   * whose first statement takes it and whose next ones are the reads, each with its own snapshot
   * taken after the lock is held (READ COMMITTED), so they see every write committed under the
   * lock before. One round trip instead of two, and no wait for Directus's pool on the way.
   * `reads` is called again on every attempt.
   */
  async run<T>(
    device: string | number,
    reads: () => Knex.QueryBuilder[],
    fn: (rows: unknown[][]) => Promise<T>,
  ): Promise<T> {
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
      const rows = await this.acquire(key, reads);
      try {
        return await fn(rows);
      } finally {
        await this.query(this.lockSql('pg_advisory_unlock', key)).catch(() => this.drop());
      }
    } finally {
      release();
      if (this.local.get(key) === tail) this.local.delete(key);
    }
  }

  private async acquire(key: string, reads: () => Knex.QueryBuilder[]): Promise<unknown[][]> {
    for (let backoff = 2; ; backoff = Math.min(backoff * 2, 50)) {
      // Inlined by knex's PostgreSQL escaping: a query of several statements takes no parameters.
      const sql = [this.lockSql('pg_try_advisory_lock', key), ...reads().map((q) => q.toString())].join(';\n');
      const [lock, ...rows] = await this.query(sql);
      if (lock?.[0]?.ok === true) return rows;
      await new Promise((r) => setTimeout(r, backoff));
    }
  }

  private lockSql(fn: 'pg_try_advisory_lock' | 'pg_advisory_unlock', key: string): string {
    return this.db.raw(`SELECT ${fn}(?, hashtext(?)) AS ok`, [DEVICE_LOCK_NS, key]).toString();
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

  /** Rows of each statement of `sql`, run on the lock connection. */
  private async query(sql: string): Promise<Array<Array<{ ok?: boolean }>>> {
    const conn = (await this.connection()) as PgConnection;
    try {
      const res = await conn.query(sql);
      return (Array.isArray(res) ? res : [res]).map((r) => r.rows);
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
