/**
 * ASCII JSON text written byte by byte into one reused buffer and read back as one flat string.
 *
 * The processor builds two JSON texts per record (raw IO, named attributes). Built by string
 * concatenation, each left a tree of intermediate strings behind (most of the processor's garbage,
 * and the batch's texts are kept until its commit, so the collector copied them), and the COPY then
 * flattened every tree again. Here the only allocation is the final string, and integers (nearly
 * every IO value) never become strings at all.
 *
 * Synchronous use only: one text at a time, from `start()` to `text()`.
 */

const D0 = 0x30;
const QUOTE = 0x22;
/** Two lowercase hex digits per byte value, as char codes. */
const HEX_CODES = Uint8Array.from({ length: 512 }, (_, i) =>
  '0123456789abcdef'.charCodeAt(i & 1 ? (i >> 1) & 15 : i >> 5),
);

/** No buffer until the first write: the module is also loaded where there is no Buffer (the map panel's bundle). */
const NONE = new Uint8Array(0) as Buffer;

export class JsonTextBuilder {
  private buf = NONE;
  private p = 0;

  /** Starts a new text (whatever was written before is dropped). */
  start(): void {
    this.p = 0;
  }

  /** The text written since `start()`. */
  text(): string {
    return this.p === 0 ? '' : this.buf.latin1Slice(0, this.p);
  }

  /** One ASCII character code. */
  char(c: number): void {
    this.room(1);
    this.buf[this.p++] = c;
  }

  /**
   * `s` as is (no quoting or escaping): false, with nothing written, when it holds a character
   * beyond ASCII (the caller then builds the text another way).
   */
  ascii(s: string): boolean {
    const n = s.length;
    this.room(n);
    const b = this.buf;
    const p = this.p;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) return false;
      b[p + i] = c;
    }
    this.p = p + n;
    return true;
  }

  /** Bytes as they are (a key worked out once: see `keyBytes`). */
  bytes(b: Uint8Array): void {
    const n = b.length;
    this.room(n);
    const buf = this.buf;
    const p = this.p;
    for (let i = 0; i < n; i++) buf[p + i] = b[i]!;
    this.p = p + n;
  }

  /** A number as JSON.stringify writes it (`null` when not finite). */
  number(v: number): void {
    if (Number.isSafeInteger(v)) {
      if (v < 0) {
        this.char(0x2d);
        this.uint(-v);
      } else this.uint(v);
    } else if (Number.isFinite(v)) this.ascii(String(v));
    else this.ascii('null');
  }

  /**
   * The number raw / 10^decimals as JSON.stringify writes it, for an integer |raw| < 10^15 and
   * decimals 1–6 (an IO value with its scale applied), without formatting a double: a decimal of at
   * most 15 significant digits is the shortest text of the double nearest to it, which is what
   * JavaScript prints, and in plain notation down to 1e-6. Other values go through `number`.
   */
  decimal(raw: number, decimals: number): void {
    if (!(Number.isSafeInteger(raw) && Math.abs(raw) < 1e15 && decimals >= 1 && decimals <= 6)) {
      this.number(raw / 10 ** decimals);
      return;
    }
    let x = raw;
    if (x < 0) {
      this.char(0x2d);
      x = -x;
    }
    const div = 10 ** decimals;
    const whole = Math.floor(x / div);
    let frac = x - whole * div;
    this.uint(whole);
    if (frac === 0) return;
    // Trailing zeros of the fraction are not printed.
    let digits = decimals;
    while (frac % 10 === 0) {
      frac /= 10;
      digits--;
    }
    this.room(digits + 1);
    const b = this.buf;
    b[this.p] = 0x2e;
    let q = this.p + digits;
    this.p = q + 1;
    for (let k = 0; k < digits; k++) {
      const d = frac % 10;
      b[q--] = D0 + d;
      frac = (frac - d) / 10;
    }
  }

  /** Decimal digits of a safe integer ≥ 0. */
  uint(v: number): void {
    let len = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) len++;
    this.room(len);
    const b = this.buf;
    let q = this.p + len;
    this.p = q;
    if (v < 0x80000000) {
      // Small integer arithmetic while the value fits (nearly always).
      let x = v | 0;
      do {
        const d = (x / 10) | 0;
        b[--q] = D0 + (x - d * 10);
        x = d;
      } while (x > 0);
      return;
    }
    let x = v;
    do {
      const d = Math.floor(x / 10);
      b[--q] = D0 + (x - d * 10);
      x = d;
    } while (x > 0);
  }

  /** Bytes as a quoted lowercase hex string. */
  hex(bytes: Uint8Array): void {
    const n = bytes.length;
    this.room(2 * n + 2);
    const b = this.buf;
    let p = this.p;
    b[p++] = QUOTE;
    for (let i = 0; i < n; i++) {
      const v = bytes[i]! << 1;
      b[p++] = HEX_CODES[v]!;
      b[p++] = HEX_CODES[v + 1]!;
    }
    b[p++] = QUOTE;
    this.p = p;
  }

  private room(n: number): void {
    if (this.p + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(512, 2 * this.buf.length, this.p + n));
    grown.set(this.buf.subarray(0, this.p));
    this.buf = grown;
  }
}

declare module 'node:buffer' {
  interface Buffer {
    /** Node's own latin1 decoder without toString's argument handling (present since Node 0.x, untyped). */
    latin1Slice(start: number, end: number): string;
  }
}

/** The bytes of `"key":` for a key that needs no escaping (ASCII), to write with `bytes`. */
export function keyBytes(key: string | number): Uint8Array {
  return Uint8Array.from(`"${key}":`, (c) => c.charCodeAt(0));
}
