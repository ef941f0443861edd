import { expect } from 'vitest';
import { ProtocolError } from '../../src/protocol/index.js';

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
