/**
 * Stream entry → decoded records, through the protocol module. Whatever fails here is the entry's
 * own fault (bad fields, corrupt or undecodable frame): the caller dead-letters it.
 */
import { decodeTelemetryEntry, type StreamFields, type TelemetryEntry, TelemetryMessage } from '../contract/index.js';
import { decodeAvlFrame, decodeUdpDatagram, ioToJson, namedAttributes } from '../protocol/index.js';
import type { DecodedEntry, IoViews } from './rows.js';

export const protocolIoViews: IoViews = { ioJson: ioToJson, named: namedAttributes };

export interface EntryFailure {
  error: string;
  imei: string;
  transport: string;
  frame: Buffer;
}

/** Decodes one telemetry entry, or says why it cannot be. */
export function decodeEntry(id: string, fields: StreamFields): DecodedEntry | EntryFailure {
  let entry: ReturnType<typeof decodeTelemetryEntry>;
  try {
    entry = decodeTelemetryEntry(fields);
  } catch (err) {
    const raw = rawFields(fields);
    return { error: `invalid entry: ${message(err)}`, imei: raw.imei, transport: raw.transport, frame: raw.frame };
  }
  try {
    const packet = entry.transport === 'udp' ? decodeUdpDatagram(entry.frame).packet : decodeAvlFrame(entry.frame);
    return { id, imei: entry.imei, receivedAt: entry.receivedAt, records: packet.records };
  } catch (err) {
    return {
      error: `undecodable frame: ${message(err)}`,
      imei: entry.imei,
      transport: entry.transport,
      frame: entry.frame,
    };
  }
}

export function isFailure(x: DecodedEntry | EntryFailure): x is EntryFailure {
  return 'error' in x;
}

function message(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Best-effort fields of an entry that failed validation, for the dead letter. */
function rawFields(fields: StreamFields): { imei: string; transport: string; frame: Buffer } {
  const get = (name: keyof TelemetryEntry) => TelemetryMessage.field(fields, name);
  const frame = get('frame');
  return {
    imei: String(get('imei') ?? ''),
    transport: String(get('transport') ?? ''),
    frame: frame === undefined ? Buffer.alloc(0) : Buffer.isBuffer(frame) ? frame : Buffer.from(frame, 'latin1'),
  };
}
