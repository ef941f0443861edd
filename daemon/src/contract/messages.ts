/**
 * Message shapes carried on the Redis streams, validated with zod on the reading side.
 *
 * Stream entries are flat field/value lists. Each message has one definition (`defineMessage`):
 * its zod schema names the fields, in order, and says which carry raw bytes; the same definition
 * encodes for writers, decodes for readers and gives the field list to the Lua scripts, so writers
 * and readers cannot drift. Times are epoch milliseconds as decimal strings.
 */
import { z } from 'zod';

/** A stream entry's fields as returned by ioredis' *Buffer variants: [field, value, field, value…]. */
export type StreamFields = ReadonlyArray<Buffer | string>;

type Shape<S extends z.ZodObject> = S['shape'];

/** The encoded form: string values only unless the message has binary fields. */
type Encoded<B> = [B] extends [never] ? string[] : (string | Buffer)[];

export interface MessageDefinition<S extends z.ZodObject, B extends keyof Shape<S> & string = never> {
  readonly schema: S;
  /** Field names in encoding order (the schema's key order). */
  readonly fields: readonly (keyof Shape<S> & string)[];
  /** Fields whose values are raw bytes (read back as Buffers, never as text). */
  readonly binary: ReadonlySet<string>;
  /** The flat field/value list for XADD. Fields whose value is undefined are left out. */
  encode(value: z.input<S>): Encoded<B>;
  /** Reads and validates an entry; throws a ZodError naming the bad field. */
  decode(entry: StreamFields): z.infer<S>;
  /** One field's raw value, for an entry that may not decode (dead letters keep what they can). */
  field(entry: StreamFields, name: keyof Shape<S> & string): Buffer | string | undefined;
}

export interface MessageOptions<B extends string> {
  readonly binary?: readonly B[];
  /**
   * Writers whose values are already typed and checked (the ingestion hot path) skip validation
   * on encode; the reader validates every entry anyway.
   */
  readonly trustedWriter?: boolean;
}

export function defineMessage<S extends z.ZodObject, B extends keyof Shape<S> & string = never>(
  schema: S,
  options: MessageOptions<B> = {},
): MessageDefinition<S, B> {
  const fields = Object.keys(schema.shape) as (keyof Shape<S> & string)[];
  const binary = new Set<string>(options.binary ?? []);
  const check = options.trustedWriter !== true;
  return {
    schema,
    fields,
    binary,
    encode(input) {
      const value = (check ? schema.parse(input) : input) as Record<string, unknown>;
      const out: (string | Buffer)[] = [];
      // An indexed loop with the common types first: this runs once per frame on ingestion's hot path.
      for (let i = 0; i < fields.length; i++) {
        const name = fields[i]!;
        const v = value[name];
        if (v === undefined) continue;
        out.push(
          name,
          typeof v === 'string' ? v : typeof v === 'number' ? String(v) : Buffer.isBuffer(v) ? v : String(v),
        );
      }
      return out as Encoded<B>;
    },
    decode(entry) {
      const raw: Record<string, Buffer | string | undefined> = {};
      for (let i = 0; i + 1 < entry.length; i += 2) raw[String(entry[i])] = entry[i + 1];
      const input: Record<string, unknown> = {};
      for (const name of fields) {
        const v = raw[name];
        input[name] = binary.has(name) ? bytes(v) : text(v);
      }
      return schema.parse(input);
    },
    field(entry, name) {
      for (let i = 0; i + 1 < entry.length; i += 2) if (String(entry[i]) === name) return entry[i + 1];
      return undefined;
    },
  };
}

function text(value: Buffer | string | undefined): string | undefined {
  return value === undefined ? undefined : typeof value === 'string' ? value : value.toString('utf8');
}

function bytes(value: Buffer | string | undefined): Buffer | undefined {
  return value === undefined ? undefined : typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
}

const imei = z.string().regex(/^\d{1,17}$/, 'IMEI must be 1-17 ASCII digits');
const epochMs = z.coerce.number().int().nonnegative();

// ---------------------------------------------------------------------------------------------
// telemetry:avl

export const Transport = z.enum(['tcp', 'udp']);
export type Transport = z.infer<typeof Transport>;

export const TelemetryEntry = z.object({
  imei,
  /** Codec id byte (8, 142, 16). */
  codec: z.coerce.number().int().min(0).max(255),
  transport: Transport,
  /** Ingestion instance that accepted the frame. */
  instance: z.string().min(1),
  /** When ingestion received the last byte of the frame. */
  receivedAt: epochMs,
  /** Records announced by the frame (N1 = N2). */
  records: z.coerce.number().int().min(0).max(255),
  /**
   * The raw bytes exactly as received: for TCP the whole AVL frame (preamble … CRC), for UDP the
   * whole datagram. Kept raw so a fixed parser can decode again.
   */
  frame: z.instanceof(Buffer),
});
export type TelemetryEntry = z.infer<typeof TelemetryEntry>;

export const TelemetryMessage = defineMessage(TelemetryEntry, { binary: ['frame'], trustedWriter: true });
export const encodeTelemetryEntry = (e: TelemetryEntry) => TelemetryMessage.encode(e);
export const decodeTelemetryEntry = (fields: StreamFields) => TelemetryMessage.decode(fields);

// ---------------------------------------------------------------------------------------------
// telemetry:dead

export const DeadLetter = z.object({
  /** Id of the entry in telemetry:avl. */
  sourceId: z.string(),
  imei: z.string(),
  transport: z.string(),
  error: z.string(),
  /** Why: `invalid`, `undecodable`, `unknown_device`, `rejected` (by the database) or `failures`. */
  cause: z.string().default(''),
  /** Times the group had delivered the entry (informational: restarts and claims count too). */
  deliveries: z.coerce.number().int().nonnegative(),
  failedAt: epochMs,
  /** Raw bytes of the failed entry (empty when the entry itself was unreadable). */
  frame: z.instanceof(Buffer).default(() => Buffer.alloc(0)),
  /** The source entry's own fields, kept so `replay-dead` can put it back as it was. */
  codec: z.coerce.number().int().min(0).max(255).optional(),
  records: z.coerce.number().int().min(0).max(255).optional(),
  receivedAt: epochMs.optional(),
  instance: z.string().optional(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;

export const DeadLetterMessage = defineMessage(DeadLetter, { binary: ['frame'] });
export const encodeDeadLetter = (d: z.input<typeof DeadLetter>) => DeadLetterMessage.encode(d);
export const decodeDeadLetter = (fields: StreamFields) => DeadLetterMessage.decode(fields);

// ---------------------------------------------------------------------------------------------
// connections:events

export const ConnectionEvent = z.object({
  type: z.enum(['connected', 'disconnected']),
  imei,
  instance: z.string().min(1),
  at: epochMs,
  /** Why: 'handshake' on connect; 'closed', 'idle', 'replaced', 'shutdown', 'error', … on disconnect. */
  reason: z.string().default(''),
  remote: z.string().default(''),
  transport: Transport.default('tcp'),
});
export type ConnectionEvent = z.infer<typeof ConnectionEvent>;
export type ConnectionEventInput = z.input<typeof ConnectionEvent>;

export const ConnectionEventMessage = defineMessage(ConnectionEvent);
export const encodeConnectionEvent = (e: ConnectionEventInput) => ConnectionEventMessage.encode(e);
export const decodeConnectionEvent = (fields: StreamFields) => ConnectionEventMessage.decode(fields);

// ---------------------------------------------------------------------------------------------
// devices:control

/**
 * A device's admission changed in Directus: the instance holding it checks it again (and closes
 * its session if it is now refused); every instance forgets its cached answer for the IMEI.
 */
export const DeviceControl = z.object({
  imei,
  /** `disabled`: enabled became false; `changed`: anything else that decides admission. */
  change: z.enum(['disabled', 'changed']),
  at: epochMs,
});
export type DeviceControl = z.infer<typeof DeviceControl>;

export const DeviceControlMessage = defineMessage(DeviceControl);
export const encodeDeviceControl = (c: DeviceControl) => DeviceControlMessage.encode(c);
export const decodeDeviceControl = (fields: StreamFields) => DeviceControlMessage.decode(fields);

// ---------------------------------------------------------------------------------------------
// connections:registry values

export const RegistryValue = z.object({
  instance: z.string().min(1),
  connectedAt: epochMs,
  /** The device's `address:port` (tells a takeover from another address apart from a reconnect). */
  remote: z.string().optional(),
});
export type RegistryValue = z.infer<typeof RegistryValue>;

/**
 * `instance|connectedAt[|remote]`. A plain string (not JSON) so the compare-and-delete Lua script
 * can match the instance with a prefix test and no JSON parsing.
 */
export function encodeRegistryValue(v: RegistryValue): string {
  if (v.instance.includes('|')) throw new Error(`instance id must not contain '|': ${v.instance}`);
  if (v.remote?.includes('|')) throw new Error(`remote must not contain '|': ${v.remote}`);
  return v.remote ? `${v.instance}|${v.connectedAt}|${v.remote}` : `${v.instance}|${v.connectedAt}`;
}

export function decodeRegistryValue(value: string): RegistryValue {
  const [instance = '', connectedAt = '0', remote] = value.split('|');
  return RegistryValue.parse({ instance, connectedAt, ...(remote ? { remote } : {}) });
}

// ---------------------------------------------------------------------------------------------
// commands:outbound:{instance_id}

export const OutboundCommand = z.object({
  /** Primary key of the Directus `commands` item (stringified). */
  commandId: z.string().min(1),
  imei,
  /** Codec 12 command text (printable ASCII). */
  text: z.string(),
  /** Optional binary payload as lowercase hex; sent instead of the text when present. */
  payloadHex: z
    .string()
    .regex(/^([0-9a-f]{2})*$/)
    .default(''),
  /** After this the command must not be sent; it is reported `expired`. */
  expiresAt: epochMs,
  /** Dispatch attempt (1 for the first); lets the reader ignore stale re-deliveries. */
  attempt: z.coerce.number().int().min(1).default(1),
});
export type OutboundCommand = z.infer<typeof OutboundCommand>;
export type OutboundCommandInput = z.input<typeof OutboundCommand>;

export const OutboundCommandMessage = defineMessage(OutboundCommand);
export const encodeOutboundCommand = (c: OutboundCommandInput) => OutboundCommandMessage.encode(c);
export const decodeOutboundCommand = (fields: StreamFields) => OutboundCommandMessage.decode(fields);

// ---------------------------------------------------------------------------------------------
// commands:responses

/**
 * - `sent`: written to the device socket.
 * - `answered`: the device's Codec 12/13 reply arrived (`response` holds its text).
 * - `failed`: the device went away or did not answer in time (`error` says which).
 * - `expired`: `expiresAt` passed before it could be sent.
 * - `not_held`: this instance does not hold the device (any more): re-dispatch it.
 */
export const CommandOutcome = z.enum(['sent', 'answered', 'failed', 'expired', 'not_held']);
export type CommandOutcome = z.infer<typeof CommandOutcome>;

export const CommandResponse = z.object({
  commandId: z.string().min(1),
  imei,
  instance: z.string().min(1),
  outcome: CommandOutcome,
  attempt: z.coerce.number().int().min(1).default(1),
  response: z.string().default(''),
  error: z.string().default(''),
  at: epochMs,
});
export type CommandResponse = z.infer<typeof CommandResponse>;
export type CommandResponseInput = z.input<typeof CommandResponse>;

export const CommandResponseMessage = defineMessage(CommandResponse);
export const encodeCommandResponse = (c: CommandResponseInput) => CommandResponseMessage.encode(c);
export const decodeCommandResponse = (fields: StreamFields) => CommandResponseMessage.decode(fields);
