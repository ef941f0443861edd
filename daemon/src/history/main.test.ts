import { describe, expect, it } from 'vitest';
import { passDecision } from './main.js';

describe('passDecision', () => {
  const limits = { behindLimitMs: 2000, maxMs: 5000 };

  it('derives while the processor keeps up or wrote no recent marks', () => {
    expect(passDecision(null, null, 10_000, limits)).toEqual({ kind: 'derive' });
    expect(passDecision(1999, null, 10_000, limits)).toEqual({ kind: 'derive' });
  });

  it('yields while the processor is behind, for at most maxMs in a row', () => {
    expect(passDecision(2000, null, 10_000, limits)).toEqual({ kind: 'yield', behindMs: 2000 });
    expect(passDecision(30_000, 10_000, 14_999, limits)).toEqual({ kind: 'yield', behindMs: 30_000 });
    expect(passDecision(30_000, 10_000, 15_000, limits)).toEqual({ kind: 'derive' });
  });

  it('never yields when the limit is 0', () => {
    expect(passDecision(60_000, null, 0, { behindLimitMs: 0, maxMs: 5000 })).toEqual({ kind: 'derive' });
  });
});
