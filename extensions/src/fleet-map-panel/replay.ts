/**
 * Track replay: where the device was at a given instant (between two timed positions, linearly;
 * across a reporting gap it stays where it was last seen, as the track draws gaps as gaps), and a
 * player that advances that instant at a chosen speed.
 */
import type { TrackSample } from '../shared/telematics/track.js';

export interface Replay {
  samples: TrackSample[];
}

/** Positions further apart than this are a gap: no straight-line motion is invented across it. */
export const REPLAY_GAP_MS = 600_000;

export function replayAt(
  samples: TrackSample[],
  ms: number,
): { lng: number; lat: number; speed: number | null; t: number } | null {
  if (samples.length === 0) return null;
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  if (ms <= first[0]) return { lng: first[1], lat: first[2], speed: first[3], t: first[0] };
  if (ms >= last[0]) return { lng: last[1], lat: last[2], speed: last[3], t: last[0] };
  // the last sample at or before ms
  let lo = 0;
  let hi = samples.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (samples[mid]![0] <= ms) lo = mid;
    else hi = mid - 1;
  }
  const a = samples[lo]!;
  const b = samples[lo + 1]!;
  if (b[0] - a[0] > REPLAY_GAP_MS) return { lng: a[1], lat: a[2], speed: null, t: ms };
  const f = (ms - a[0]) / (b[0] - a[0]);
  return { lng: a[1] + (b[1] - a[1]) * f, lat: a[2] + (b[2] - a[2]) * f, speed: a[3], t: ms };
}

/** Replay speeds offered: track seconds per real second. */
export const REPLAY_SPEEDS = [10, 60, 300, 1200] as const;

/**
 * Advances the replay instant in real time × speed. The frame source and clock are injected so the
 * logic runs in tests without a browser.
 */
export class ReplayPlayer {
  private playing = false;
  private lastTick = 0;
  private handle: number | null = null;
  speed: number = REPLAY_SPEEDS[1];

  constructor(
    private readonly range: { fromMs: number; toMs: number },
    private readonly onTime: (ms: number) => void,
    private readonly frames: {
      request(cb: (now: number) => void): number;
      cancel(handle: number): void;
    } = { request: (cb) => requestAnimationFrame(cb), cancel: (h) => cancelAnimationFrame(h) },
    public time = range.fromMs,
  ) {}

  get isPlaying(): boolean {
    return this.playing;
  }

  play(now = performance.now()): void {
    if (this.playing) return;
    if (this.time >= this.range.toMs) this.time = this.range.fromMs;
    this.playing = true;
    this.lastTick = now;
    this.handle = this.frames.request((t) => this.tick(t));
  }

  pause(): void {
    this.playing = false;
    if (this.handle !== null) this.frames.cancel(this.handle);
    this.handle = null;
  }

  seek(ms: number): void {
    this.time = Math.min(this.range.toMs, Math.max(this.range.fromMs, ms));
    this.onTime(this.time);
  }

  private tick(now: number): void {
    if (!this.playing) return;
    const dt = now - this.lastTick;
    this.lastTick = now;
    this.seek(this.time + dt * this.speed);
    if (this.time >= this.range.toMs) {
      this.pause();
      return;
    }
    this.handle = this.frames.request((t) => this.tick(t));
  }
}
