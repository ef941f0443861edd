/**
 * Redis key names shared by the daemon and the Directus extension.
 *
 * Every key goes through a prefix so that several deployments (and every test run) can share one
 * Redis without seeing each other's data. Production uses the empty prefix, so the keys are exactly
 * the ones named in the design (`telemetry:avl`, `connections:registry`, ...).
 */
export interface RedisKeys {
  readonly prefix: string;
  /** Stream: one entry per accepted AVL frame or UDP datagram. */
  readonly telemetryAvl: string;
  /** Stream: entries the processor could not handle, with error and cause (capped, see PROCESS_DEAD_MAXLEN). */
  readonly telemetryDead: string;
  /** Hash: telemetry:avl entry id → times its handling failed (the processor's own per-entry count). */
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

export function redisKeys(prefix = ''): RedisKeys {
  return {
    prefix,
    telemetryAvl: `${prefix}telemetry:avl`,
    telemetryDead: `${prefix}telemetry:dead`,
    telemetryFailures: `${prefix}telemetry:failures`,
    connectionsRegistry: `${prefix}connections:registry`,
    connectionsEvents: `${prefix}connections:events`,
    commandsResponses: `${prefix}commands:responses`,
    devicesControl: `${prefix}devices:control`,
    heartbeat: (instanceId) => `${prefix}instance:heartbeat:${instanceId}`,
    commandsOutbound: (instanceId) => `${prefix}commands:outbound:${instanceId}`,
    heartbeatPattern: `${prefix}instance:heartbeat:*`,
    commandsOutboundPattern: `${prefix}commands:outbound:*`,
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
