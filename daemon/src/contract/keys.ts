/**
 * Redis key names shared by the daemon and the Directus extension.
 *
 * Every key goes through a prefix so that several deployments (and every test run) can share one
 * Redis without seeing each other's data. Production uses the empty prefix, so the keys are exactly
 * the ones named in the design (`telemetry:avl`, `connections:registry`, ...).
 *
 * Layout (`KeyLayout`): the telemetry stream can be split into partitions by IMEI hash, each with
 * its own dead-letter stream and failure counts. With one partition on one Redis (the default) the
 * names are the design's, unchanged. Otherwise each name starts with a hash tag naming its Redis
 * Cluster slot, so the keys a script or MULTI touches together live in one slot:
 * - partition p: `{p.k}:telemetry:avl`, `{p.k}:telemetry:dead`, `{p.k}:telemetry:failures`, where
 *   `k` only picks the tag's slot: the p-th of n evenly spaced ones (`partitionTag`), so a cluster
 *   whose slots are split evenly (as `redis-cli --cluster create` does) gets an even share of the
 *   partitions on every master;
 * - in a cluster, everything else (registry, heartbeats, outbound and response streams, events,
 *   device control) under `{fleet}:`: the registry scripts and the dispatch script touch them
 *   together, and they carry little load next to telemetry.
 */
import calculateSlot from 'cluster-key-slot';

export interface KeyLayout {
  /** Telemetry partitions (≥ 1; default 1). */
  partitions?: number;
  /** Redis Cluster: every key carries its slot's hash tag. */
  cluster?: boolean;
}

/** One partition of the telemetry stream and the keys written together with it. */
export interface TelemetryPartition {
  readonly index: number;
  /** Stream: one entry per accepted AVL frame or UDP datagram of the partition's devices. */
  readonly avl: string;
  /** Stream: the partition's entries the processor could not handle (capped, see PROCESS_DEAD_MAXLEN). */
  readonly dead: string;
  /** Hash: entry id → times its handling failed (the processor's own per-entry count). */
  readonly failures: string;
}

export interface RedisKeys {
  readonly prefix: string;
  readonly cluster: boolean;
  /** The telemetry partitions, by index; processors read every one. */
  readonly telemetry: readonly TelemetryPartition[];
  /** The partition a device's frames go to (so they stay in order). */
  telemetryFor(imei: string): TelemetryPartition;
  /** The partition whose stream is `stream`, if any. */
  partitionOf(stream: string): TelemetryPartition | undefined;
  /** Partition 0's stream: the telemetry stream when there is one partition. */
  readonly telemetryAvl: string;
  /** Partition 0's dead-letter stream. */
  readonly telemetryDead: string;
  /** Partition 0's failure counts. */
  readonly telemetryFailures: string;
  /** Hash: IMEI → registry value (see `encodeRegistryValue`) of the instance holding the socket. */
  readonly connectionsRegistry: string;
  /** Stream: connected / disconnected events written by ingestion. */
  readonly connectionsEvents: string;
  /** Stream: command outcomes written by ingestion, consumed by the extension. */
  readonly commandsResponses: string;
  /**
   * Stream: a device's admission changed (disabled, allowed networks); written by the extension,
   * read by every ingestion instance (plain XREAD, no group: each instance needs every entry).
   */
  readonly devicesControl: string;
  /** String with a TTL: the instance is alive. */
  heartbeat(instanceId: string): string;
  /** Stream: commands for the devices held by one ingestion instance. */
  commandsOutbound(instanceId: string): string;
  /** Pattern matching every heartbeat key (for SCAN). */
  readonly heartbeatPattern: string;
  /** Pattern matching every outbound command stream (for SCAN). */
  readonly commandsOutboundPattern: string;
}

const SLOTS = 16384;
/** Hash tags by partition count (the search below is cheap, but runs once per count). */
const tagCache = new Map<number, string[]>();

/**
 * Partition p's hash tag among n: `p.k` with the smallest k whose slot lies in the p-th of n equal
 * slot ranges, so the partitions' slots are spread evenly over the cluster's slot space.
 */
export function partitionTag(p: number, n: number): string {
  let tags = tagCache.get(n);
  if (!tags) {
    tags = Array.from({ length: n }, (_, i) => {
      const lo = Math.floor((i * SLOTS) / n);
      const hi = Math.floor(((i + 1) * SLOTS) / n);
      for (let k = 0; ; k++) {
        const slot = calculateSlot(`${i}.${k}`);
        if (slot >= lo && slot < hi) return `${i}.${k}`;
      }
    });
    tagCache.set(n, tags);
  }
  const tag = tags[p];
  if (tag === undefined) throw new RangeError(`partition ${p} of ${n}`);
  return tag;
}

/** FNV-1a of the IMEI: cheap, stable across processes and versions, spreads 15-digit IMEIs evenly. */
export function imeiHash(imei: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < imei.length; i++) {
    h ^= imei.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function redisKeys(prefix = '', layout: KeyLayout = {}): RedisKeys {
  const n = layout.partitions ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`telemetry partitions must be a positive integer, not ${n}`);
  const cluster = layout.cluster ?? false;
  const tagged = n > 1 || cluster;
  const telemetry = Array.from({ length: n }, (_, index): TelemetryPartition => {
    const base = tagged ? `${prefix}{${partitionTag(index, n)}}:` : prefix;
    return { index, avl: `${base}telemetry:avl`, dead: `${base}telemetry:dead`, failures: `${base}telemetry:failures` };
  });
  const byStream = new Map(telemetry.map((t) => [t.avl, t]));
  const p0 = telemetry[0]!;
  const ctl = cluster ? `${prefix}{fleet}:` : prefix;
  return {
    prefix,
    cluster,
    telemetry,
    telemetryFor: n === 1 ? () => p0 : (imei) => telemetry[imeiHash(imei) % n]!,
    partitionOf: (stream) => byStream.get(stream),
    telemetryAvl: p0.avl,
    telemetryDead: p0.dead,
    telemetryFailures: p0.failures,
    connectionsRegistry: `${ctl}connections:registry`,
    connectionsEvents: `${ctl}connections:events`,
    commandsResponses: `${ctl}commands:responses`,
    devicesControl: `${ctl}devices:control`,
    heartbeat: (instanceId) => `${ctl}instance:heartbeat:${instanceId}`,
    commandsOutbound: (instanceId) => `${ctl}commands:outbound:${instanceId}`,
    heartbeatPattern: `${ctl}instance:heartbeat:*`,
    commandsOutboundPattern: `${ctl}commands:outbound:*`,
  };
}

/** Consumer groups. Each reader of a shared stream has its own group so none steals another's entries. */
export const GROUPS = {
  /** Processors on `telemetry:avl` and on `connections:events` (device online state). */
  processors: 'processors',
  /** The Directus extension on `connections:events` (dispatch pending commands on connect). */
  commandDispatch: 'directus-dispatch',
  /** The Directus extension on `commands:responses`. */
  commandResponses: 'directus-responses',
  /** Each ingestion instance on its own `commands:outbound:{instance_id}`. */
  outbound: 'ingestion',
} as const;

/** `devices:control` keeps this many entries (readers only need the ones since they started). */
export const DEVICES_CONTROL_MAXLEN = 10_000;
