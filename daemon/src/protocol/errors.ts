import type { ProtocolErrorCode } from './types.js';

/**
 * The only error the protocol module throws for bad input. `code` says which check failed and
 * `offset` the byte position (from the start of the buffer handed in) where it failed. The message
 * is for people and does not repeat the code.
 */
export class ProtocolError extends Error {
  readonly code: ProtocolErrorCode;
  readonly offset: number;

  constructor(code: ProtocolErrorCode, offset: number, message: string) {
    super(`${message} (at byte ${offset})`);
    this.name = 'ProtocolError';
    this.code = code;
    this.offset = offset;
  }

  toJSON(): { code: ProtocolErrorCode; offset: number; message: string } {
    return { code: this.code, offset: this.offset, message: this.message };
  }
}

export function isProtocolError(err: unknown): err is ProtocolError {
  return err instanceof ProtocolError;
}
