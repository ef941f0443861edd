/**
 * Which instance holds which device, in Redis (`connections:registry`, `connections:events`,
 * `instance:heartbeat:{id}`) and locally (IMEI → the one session this process keeps for it).
 *
 * Registry changes for one IMEI are serialised in this process, so "old socket replaced by new"
 * always reads disconnected(replaced) → connected in the event stream, and a late close of a
 * replaced socket can never delete the entry its successor wrote. Across instances the
 * compare-and-delete script gives the same guarantee.
 */
import {
  decodeRegistryValue,
  deregisterConnection,
  encodeRegistryValue,
  HEARTBEAT_REFRESH_SECONDS,
  HEARTBEAT_TTL_SECONDS,
  type RedisKeys,
  registerConnection,
  type Transport,
} from '../contract/index.js';
import type { IngestRedis } from './redis.js';

/** Anything that can be held for an IMEI and told to go away. */
export interface Holder {
  readonly imei: string;
  readonly remote: string;
  /** Closes the holder's socket because a newer connection took its place. */
  replaced(): void;
}

/**
 * A login that replaced a live session: one this process held (its remote is known) or one
 * another instance held, as the registry said at the moment of the takeover (its remote is null
 * when the entry was written before registry values carried it).
 */
export type Takeover =
  | { holder: 'this_instance'; remote: string }
  | { holder: 'other_instance'; instance: string; remote: string | null };

export type ClaimResult = { held: false } | { held: true; takeover: Takeover | null };

export class DeviceRegistry<H extends Holder = Holder> {
  private readonly holders = new Map<string, H>();
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Releases Redis refused (it was down): retried when the client is ready again. */
  private readonly unreleased = new Map<string, { holder: H; reason: string }>();

  constructor(
    private readonly redis: IngestRedis,
    private readonly keys: RedisKeys,
    readonly instanceId: string,
    private readonly transport: Transport = 'tcp',
  ) {
    redis.on('ready', () => this.retryReleases());
  }

  /** Entries whose removal from Redis is still owed. */
  get owedReleases(): number {
    return this.unreleased.size;
  }

  /** The local holder for an IMEI, if this process has one. */
  get(imei: string): H | undefined {
    return this.holders.get(imei);
  }

  get size(): number {
    return this.holders.size;
  }

  all(): H[] {
    return [...this.holders.values()];
  }

  /**
   * Makes `holder` the one for its IMEI: replaces (and deregisters) an older local holder, then
   * writes the registry entry and the `connected` event. `stillWanted` is re-checked inside the
   * serialised section (the socket may have closed while waiting). Rejects if Redis refused.
   */
  claim(holder: H, stillWanted: () => boolean): Promise<ClaimResult> {
    return this.serial(holder.imei, async (): Promise<ClaimResult> => {
      if (!stillWanted()) return { held: false };
      const old = this.holders.get(holder.imei);
      let takeover: Takeover | null = null;
      if (old && old !== holder) {
        this.holders.delete(holder.imei);
        takeover = { holder: 'this_instance', remote: old.remote };
        old.replaced();
        await this.deregisterRemote(old, 'replaced').catch(() => {});
      }
      const at = Date.now();
      const previous = await registerConnection(
        this.redis,
        this.keys,
        encodeRegistryValue({ instance: this.instanceId, connectedAt: at, remote: holder.remote }),
        {
          imei: holder.imei,
          instance: this.instanceId,
          at,
          reason: 'handshake',
          remote: holder.remote,
          transport: this.transport,
        },
      );
      // The entry now names the new session: an owed release of an older one is moot.
      this.unreleased.delete(holder.imei);
      if (!stillWanted()) {
        // Closed while we registered: undo, so the registry never names a dead socket.
        await this.deregisterRemote(holder, 'closed').catch(() => {});
        return { held: false };
      }
      this.holders.set(holder.imei, holder);
      if (takeover === null && previous) {
        const other = decodeRegistryValue(previous);
        if (other.instance !== this.instanceId) {
          takeover = { holder: 'other_instance', instance: other.instance, remote: other.remote ?? null };
        }
      }
      return { held: true, takeover };
    });
  }

  /**
   * Forgets `holder` if it is still the one for its IMEI; then removes the Redis entry only if it
   * still names this instance and records the `disconnected` event. A replaced holder is a no-op.
   */
  release(holder: H, reason: string): Promise<boolean> {
    return this.serial(holder.imei, async () => {
      if (this.holders.get(holder.imei) !== holder) return false;
      this.holders.delete(holder.imei);
      try {
        await this.deregisterRemote(holder, reason);
      } catch (err) {
        // Owed until Redis is back; otherwise the registry would keep naming us for a gone device.
        this.unreleased.set(holder.imei, { holder, reason });
        throw err;
      }
      return true;
    });
  }

  /** Runs the owed releases; the compare-and-delete keeps this safe if the device moved meanwhile. */
  retryReleases(): Promise<void> {
    const owed = [...this.unreleased.values()];
    return Promise.all(
      owed.map(({ holder, reason }) =>
        this.serial(holder.imei, async () => {
          if (this.unreleased.get(holder.imei)?.holder !== holder) return;
          // A newer local session for the device owns the entry now: nothing to remove.
          if (!this.holders.has(holder.imei)) await this.deregisterRemote(holder, reason);
          this.unreleased.delete(holder.imei);
        }).catch(() => {}),
      ),
    ).then(() => {});
  }

  /** Resolves when every registry change queued so far has run. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }

  private async deregisterRemote(holder: H, reason: string): Promise<number> {
    return deregisterConnection(this.redis, this.keys, {
      imei: holder.imei,
      instance: this.instanceId,
      at: Date.now(),
      reason,
      remote: holder.remote,
      transport: this.transport,
    });
  }

  private serial<T>(imei: string, task: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(imei) ?? Promise.resolve();
    const next = prev.then(task, task);
    const tail = next.catch(() => {});
    this.chains.set(imei, tail);
    tail.then(() => {
      if (this.chains.get(imei) === tail) this.chains.delete(imei);
    });
    return next;
  }
}

export interface HeartbeatOptions {
  ttlSeconds?: number;
  refreshMs?: number;
  onError?: (err: unknown) => void;
  /** After each successful refresh (Redis is answering again). */
  onBeat?: () => void;
}

/**
 * Keeps `instance:heartbeat:{id}` alive. The first write is awaited (start-up fails if Redis is
 * away); refresh failures are reported and retried on the next tick.
 */
export async function startHeartbeat(
  redis: IngestRedis,
  keys: RedisKeys,
  instanceId: string,
  options: HeartbeatOptions = {},
): Promise<{ stop(remove: boolean): Promise<void> }> {
  const ttl = options.ttlSeconds ?? HEARTBEAT_TTL_SECONDS;
  const key = keys.heartbeat(instanceId);
  const beat = () =>
    redis.set(key, String(Date.now()), 'EX', ttl).then(() => {
      options.onBeat?.();
    });
  await beat();
  // After a reconnect (Redis restarted, failover) say "alive" at once rather than up to a refresh later.
  const onReady = () => {
    beat().catch((err: unknown) => options.onError?.(err));
  };
  redis.on('ready', onReady);
  const timer = setInterval(
    () => {
      beat().catch((err: unknown) => options.onError?.(err));
    },
    options.refreshMs ?? HEARTBEAT_REFRESH_SECONDS * 1000,
  );
  timer.unref();
  return {
    async stop(remove) {
      clearInterval(timer);
      redis.off('ready', onReady);
      // A clean exit says so at once; a crash lets the key expire.
      if (remove) await redis.del(key);
    },
  };
}

/** Clears registry entries a previous run with this instance id left behind (crash, kill -9). */
export function reapOwnEntries(redis: IngestRedis, keys: RedisKeys, instanceId: string): Promise<number> {
  return redis.fleetReapInstance(keys.connectionsRegistry, instanceId);
}
