import { expect } from 'vitest';
import { type EncodableRecord, ProtocolError } from '../../src/protocol/index.js';

/** A record with a fix; `over` replaces any field. */
export function encodableRecord(over: Partial<EncodableRecord> = {}): EncodableRecord {
  return {
    timestamp: Date.UTC(2026, 0, 1),
    priority: 1,
    longitude: 18.4241,
    latitude: -33.9249,
    altitude: 25,
    angle: 90,
    satellites: 9,
    speed: 0,
    eventIoId: 0,
    io: { ids: [66], values: [12345] },
    ...over,
  };
}

/** Runs fn, expects it to throw a ProtocolError and returns it. */
export function catchError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return err as ProtocolError;
  }
  throw new Error('expected a ProtocolError, nothing was thrown');
}
