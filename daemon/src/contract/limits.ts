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

/** Heartbeat lifetime: an instance whose key is gone for this long is treated as dead. */
export const HEARTBEAT_TTL_SECONDS = 90;
/** How often an instance refreshes its heartbeat; well within the TTL. */
export const HEARTBEAT_REFRESH_SECONDS = 30;
