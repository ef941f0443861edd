import { describe, expect, it } from 'vitest';
import { healthSummary } from './health-level.js';

describe('healthSummary', () => {
  it('turns two readings into packets per second, the age of the newest data and the backlog', () => {
    const first = { at: 100_000, telemetryBacklog: 0, processors: { entriesRead: 1000, lastDeliveredId: '99000-0' } };
    const second = { at: 110_000, telemetryBacklog: 7, processors: { entriesRead: 1250, lastDeliveredId: '107000-3' } };
    expect(healthSummary(null, first)).toEqual({ packetsPerSecond: null, newestAgeSeconds: 1, backlog: 0 });
    expect(healthSummary(first, second)).toEqual({ packetsPerSecond: 25, newestAgeSeconds: 3, backlog: 7 });
    expect(healthSummary(first, { at: 110_000, telemetryBacklog: 0, processors: null })).toEqual({
      packetsPerSecond: null,
      newestAgeSeconds: null,
      backlog: 0,
    });
  });
});
