/**
 * Stream entry → decoded records, through the protocol module. Whatever fails here is the entry's
 * own fault (bad fields, corrupt or undecodable frame): the caller dead-letters it (with the
 * entry's own fields, see consumer.ts).
 */
import { decodeTelemetryEntry, type StreamFields } from '../contract/index.js';
import { decodeAvlFrame, decodeUdpDatagram, ioJsonText, namedAttributesText } from '../protocol/index.js';
import type { DecodedEntry, IoViews } from './rows.js';

export const protocolIoViews: IoViews = {
  ioJsonText,
  attributesText: (io) => namedAttributesText(io),
};

export interface EntryFailure {
  /** `invalid`: the entry's fields break the message definition; `undecodable`: its frame does. */
  cause: 'invalid' | 'undecodable';
  error: string;
}

/** Decodes one telemetry entry, or says why it cannot be. */
export function decodeEntry(id: string, fields: StreamFields): DecodedEntry | EntryFailure {
  let entry: ReturnType<typeof decodeTelemetryEntry>;
  try {
    entry = decodeTelemetryEntry(fields);
  } catch (err) {
    return { cause: 'invalid', error: `invalid entry: ${message(err)}` };
  }
  try {
    const packet = entry.transport === 'udp' ? decodeUdpDatagram(entry.frame).packet : decodeAvlFrame(entry.frame);
    return { id, imei: entry.imei, receivedAt: entry.receivedAt, records: packet.records };
  } catch (err) {
    return { cause: 'undecodable', error: `undecodable frame: ${message(err)}` };
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
