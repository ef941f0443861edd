import { ProtocolError } from './errors.js';
import type { TcpFrame, TcpFramerOptions } from './types.js';

/** Longest IMEI login accepted (15 digits in practice; the reference allows up to 17). */
export const MAX_IMEI_LENGTH = 17;

const PING: TcpFrame = Object.freeze({ kind: 'ping' }) as TcpFrame;

/**
 * Streaming TCP framer: push() the chunks as they arrive, get back whole frames in stream order.
 *
 * Frames are cut by byte count only, never by read boundaries. Bytes stay in the chunks they came in
 * until a whole frame is available; a frame inside one chunk is returned as a zero-copy subarray, a
 * frame spanning chunks is copied once into a buffer of exactly its (already validated) size.
 * A desynchronised stream makes push() throw a ProtocolError; the framer then stays failed (the
 * caller is expected to close the socket) and every later push() rethrows the same error.
 */
export class TcpFramer {
  private readonly maxFrameBytes: number;
  private chunks: Buffer[] = [];
  /** Read offset into chunks[0]. */
  private head = 0;
  private total = 0;
  private failed: ProtocolError | null = null;
  /** Bytes consumed since the start of the stream (error offsets are stream positions). */
  private consumed = 0;
  /**
   * With `loginFirst`, until the caller accepted a login (`loginAccepted`) the only valid bytes
   * are one IMEI login: anything else fails at its first byte and nothing after the login is
   * parsed, so a connection that has not logged in never holds more than a login's 19 bytes.
   */
  private awaitingLogin: boolean;
  private loginReturned = false;

  constructor(opts: TcpFramerOptions) {
    if (!Number.isInteger(opts.maxFrameBytes) || opts.maxFrameBytes < 3) {
      throw new RangeError(`maxFrameBytes must be an integer >= 3, got ${opts.maxFrameBytes}`);
    }
    this.maxFrameBytes = opts.maxFrameBytes;
    this.awaitingLogin = opts.loginFirst === true;
  }

  /** The login was accepted: from now on frames, pings and repeated logins are parsed. */
  loginAccepted(): void {
    this.awaitingLogin = false;
  }

  /** False until `loginAccepted()` when made with `loginFirst`. */
  get parsingFrames(): boolean {
    return !this.awaitingLogin;
  }

  /** Bytes received but not yet returned as a frame. */
  get buffered(): number {
    return this.total;
  }

  /** Appends the frames now complete to `out` (a fresh array by default) and returns it. */
  push(chunk: Buffer, out: TcpFrame[] = []): TcpFrame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.total += chunk.length;
    }
    try {
      // Once the login is out, what follows waits (unparsed) until it is accepted.
      while (this.total > 0 && !(this.awaitingLogin && this.loginReturned)) {
        const frame = this.next();
        if (frame === null) break;
        out.push(frame);
        if (this.awaitingLogin) this.loginReturned = true;
      }
    } catch (err) {
      if (err instanceof ProtocolError) this.failed = err;
      throw err;
    }
    return out;
  }

  /** Byte at logical position i (0 = first unconsumed byte); caller guarantees i < total. */
  private peek(i: number): number {
    let idx = this.head + i;
    for (const c of this.chunks) {
      if (idx < c.length) return c[idx]!;
      idx -= c.length;
    }
    return -1;
  }

  private next(): TcpFrame | null {
    const b0 = this.peek(0);
    if (this.awaitingLogin) return this.nextFirstLogin(b0);
    if (b0 === 0xff) {
      this.take(1);
      return PING;
    }
    if (this.total < 2) return null;
    const len16 = (b0 << 8) | this.peek(1);
    if (len16 !== 0) return this.nextLogin(len16);

    if (this.total < 8) {
      // Fail early on garbage: the preamble must be four zero bytes.
      for (let i = 2; i < this.total && i < 4; i++) {
        if (this.peek(i) !== 0) throw this.err('BAD_PREAMBLE', i, 'frame preamble must be 00000000');
      }
      return null;
    }
    if (this.peek(2) !== 0 || this.peek(3) !== 0) {
      throw this.err('BAD_PREAMBLE', 2, 'frame preamble must be 00000000');
    }
    const d = ((this.peek(4) << 24) | (this.peek(5) << 16) | (this.peek(6) << 8) | this.peek(7)) >>> 0;
    if (d < 3) throw this.err('LENGTH_TOO_SMALL', 4, `data field length ${d} < 3 (codec id + 2 counts)`);
    if (d > this.maxFrameBytes) {
      throw this.err(
        'LENGTH_EXCEEDED',
        4,
        `data field length ${d} exceeds the configured maximum ${this.maxFrameBytes}`,
      );
    }
    const size = d + 12;
    if (this.total < size) return null;
    const bytes = this.take(size);
    return { kind: 'frame', codec: bytes[8]!, bytes };
  }

  /** Before the login was accepted: exactly one login (2-byte length 1..17, then ASCII digits). */
  private nextFirstLogin(b0: number): TcpFrame | null {
    if (b0 !== 0) throw this.err('EXPECTED_LOGIN', 0, 'expected an IMEI login (length 00 01..00 11) first');
    if (this.total < 2) return null;
    const len = this.peek(1);
    if (len === 0 || len > MAX_IMEI_LENGTH) {
      throw this.err('EXPECTED_LOGIN', 1, `expected an IMEI login first; length ${len} is not 1..${MAX_IMEI_LENGTH}`);
    }
    return this.nextLogin(len);
  }

  private nextLogin(len: number): TcpFrame | null {
    if (len > MAX_IMEI_LENGTH) {
      throw this.err(
        'BAD_PREAMBLE',
        0,
        `0x${len.toString(16).padStart(4, '0')} is neither a frame preamble (00000000) nor an IMEI login length (1..${MAX_IMEI_LENGTH})`,
      );
    }
    const avail = Math.min(this.total, 2 + len);
    for (let i = 2; i < avail; i++) {
      const c = this.peek(i);
      if (c < 0x30 || c > 0x39)
        throw this.err('BAD_IMEI', i, `IMEI byte 0x${c.toString(16).padStart(2, '0')} is not an ASCII digit`);
    }
    if (this.total < 2 + len) return null;
    const bytes = this.take(2 + len);
    return { kind: 'imei', imei: bytes.toString('latin1', 2) };
  }

  private err(code: ProtocolError['code'], rel: number, message: string): ProtocolError {
    return new ProtocolError(code, this.consumed + rel, message);
  }

  /** Removes n bytes (n <= total) from the front and returns them as one Buffer. */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (this.head === 0 && first.length === n) {
      // The read is exactly this frame (a stop-and-wait device): the chunk itself, no view of it.
      out = first;
      this.chunks.shift();
    } else if (first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0]!;
        const m = Math.min(c.length - this.head, n - filled);
        c.copy(out, filled, this.head, this.head + m);
        filled += m;
        this.head += m;
        if (this.head === c.length) {
          this.chunks.shift();
          this.head = 0;
        }
      }
    }
    this.total -= n;
    this.consumed += n;
    return out;
  }
}
