/**
 * Limits that more than one component enforces. Each has exactly one definition here; the
 * protocol encoder, ingestion, the extension's validation, the console panel and the simulator
 * import it. Plain constants without dependencies, so browser bundles can import them too.
 */

/**
 * Largest command (text bytes or binary payload) a command may carry. Codec 12's size field is
 * 4 bytes, but FMB devices accept packets of at most 1280 bytes; 1024 leaves room for the envelope.
 */
export const MAX_COMMAND_BYTES = 1024;

/** Bytes a Codec 12/14 data field adds around the command (codec, quantities, type, size). */
export const COMMAND_FRAME_OVERHEAD_BYTES = 8;

/** Cap on a TCP frame's data field length (the protocol reference recommends 64 KiB). */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;

/** The port devices connect to (TCP, and UDP when enabled); the simulator's default too. */
export const DEFAULT_DEVICE_PORT = 5027;

/**
 * Ingestion's connection limits: `startIngestion` falls back to them and the environment
 * (config.ts) defaults to them, so the in-process server and the daemon behave alike.
 */
export const INGESTION_LIMITS = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  // A device sends its IMEI as soon as the connection is up; 5 s also covers a TLS handshake
  // on a slow mobile link, and bounds how long a silent client holds a slot.
  handshakeTimeoutMs: 5_000,
  /** A frame that has started must be complete within this long. */
  frameTimeoutMs: 15_000,
  /** Teltonika devices may stay silent for minutes between packets. */
  idleTimeoutMs: 15 * 60_000,
  /** Unparsed bytes buffered per socket before it stops being read (backpressure). */
  maxBufferedBytes: 256 * 1024,
  maxConnections: 100_000,
  // Before login a connection holds at most 19 bytes of ours plus the socket itself (a few KiB),
  // so 1000 costs an address a few MB; mobile carriers' NAT spreads a fleet over many public
  // addresses. A fleet behind one NAT (a private APN) raises MAX_CONNECTIONS_PER_IP.
  maxConnectionsPerIp: 1_000,
  maxUdpInFlight: 10_000,
} as const;

/** How long ingestion trusts a cached device lookup (enabled flag, allowed networks). */
export const DEVICE_CACHE_TTL_MS = 10_000;
/** How long a sent Codec 12 command waits for the device's reply. */
export const COMMAND_REPLY_TIMEOUT_MS = 30_000;

/** Heartbeat lifetime: an instance whose key is gone for this long is treated as dead. */
export const HEARTBEAT_TTL_SECONDS = 90;
/** How often an instance refreshes its heartbeat; well within the TTL. */
export const HEARTBEAT_REFRESH_SECONDS = 30;
