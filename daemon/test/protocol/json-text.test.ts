import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JsonTextBuilder, keyBytes } from '../../src/protocol/json-text.js';

const built = (write: (t: JsonTextBuilder) => void) => {
  const t = new JsonTextBuilder();
  t.start();
  write(t);
  return t.text();
};

describe('JsonTextBuilder', () => {
  it('writes numbers as JSON.stringify does', () => {
    const edge = [0, -0, 1, 9, 10, 2 ** 31 - 1, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];
    const odd = [0.5, -24.079, 1e21, 1e-7, 2 ** 53 + 2, Number.NaN, Number.POSITIVE_INFINITY, -1e300];
    for (const v of [...edge, ...odd]) expect(built((t) => t.number(v))).toBe(JSON.stringify(v));
    fc.assert(
      fc.property(fc.oneof(fc.maxSafeInteger(), fc.double()), (v) => {
        expect(built((t) => t.number(v))).toBe(JSON.stringify(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('writes raw / 10^k as JavaScript prints the quotient', () => {
    for (const [raw, k] of [
      [24079, 3],
      [24000, 3],
      [5, 3],
      [-5, 1],
      [0, 2],
      [1, 6],
      [10 ** 15 - 1, 6],
      [10 ** 15, 3],
      [2 ** 53 - 1, 2],
    ] as const) {
      expect(built((t) => t.decimal(raw, k))).toBe(JSON.stringify(raw / 10 ** k));
    }
    fc.assert(
      fc.property(fc.maxSafeInteger(), fc.integer({ min: 1, max: 6 }), (raw, k) => {
        expect(built((t) => t.decimal(raw, k))).toBe(JSON.stringify(raw / 10 ** k));
      }),
      { numRuns: 5000 },
    );
  });

  it('writes keys, bytes as hex and ASCII text, and refuses text beyond ASCII', () => {
    expect(
      built((t) => {
        t.char(0x7b);
        t.bytes(keyBytes(239));
        t.hex(Uint8Array.of(0, 0xab, 0xff));
        t.char(0x2c);
        t.bytes(keyBytes('vin'));
        t.ascii('"x"');
        t.char(0x7d);
      }),
    ).toBe('{"239":"00abff","vin":"x"}');
    const t = new JsonTextBuilder();
    t.start();
    t.ascii('ab');
    expect(t.ascii('cé')).toBe(false);
    expect(t.text()).toBe('ab');
  });

  it('grows past its first buffer and starts afresh', () => {
    const bytes = Uint8Array.from({ length: 3000 }, (_, i) => i & 0xff);
    expect(built((t) => t.hex(bytes))).toBe(`"${Buffer.from(bytes).toString('hex')}"`);
    const t = new JsonTextBuilder();
    t.start();
    t.ascii('old');
    t.start();
    expect(t.text()).toBe('');
    t.uint(42);
    expect(t.text()).toBe('42');
  });
});
