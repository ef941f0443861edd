/**
 * Latency histogram with log-linear buckets (16 per power of two, ≤ 6% error), mergeable across
 * worker processes by adding the count arrays. Fixed size: recording never allocates.
 */
const SUB = 16;
const MAX_POW = 32; // up to 2^32 µs (> an hour)

export class Histogram {
  readonly counts: number[];
  count = 0;
  max = 0;
  sum = 0;

  constructor(counts?: number[]) {
    this.counts = counts ? [...counts] : new Array<number>(MAX_POW * SUB).fill(0);
    for (const c of this.counts) this.count += c;
  }

  /** Records one value in microseconds. */
  record(us: number): void {
    const v = Math.max(1, Math.round(us));
    this.counts[bucketOf(v)]! += 1;
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  merge(other: { counts: number[]; max: number; sum: number }): void {
    for (let i = 0; i < this.counts.length; i++) {
      const c = other.counts[i] ?? 0;
      this.counts[i]! += c;
      this.count += c;
    }
    this.sum += other.sum;
    this.max = Math.max(this.max, other.max);
  }

  /** Value (µs, bucket upper bound, capped by the max seen) at quantile q in [0, 1]. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(upperBound(i), this.max);
    }
    return this.max;
  }

  toJSON(): { counts: number[]; max: number; sum: number } {
    return { counts: this.counts, max: this.max, sum: this.sum };
  }
}

function bucketOf(v: number): number {
  const pow = 31 - Math.clz32(v);
  if (pow < 4) return v; // values 1..15 get their own bucket
  const sub = (v >>> (pow - 4)) & (SUB - 1);
  return Math.min(MAX_POW * SUB - 1, pow * SUB + sub);
}

function upperBound(bucket: number): number {
  if (bucket < SUB) return bucket;
  const pow = Math.floor(bucket / SUB);
  const sub = bucket % SUB;
  return ((SUB + sub + 1) << (pow - 4)) - 1;
}
