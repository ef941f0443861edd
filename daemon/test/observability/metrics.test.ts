import { Redis } from 'ioredis';
import { Counter } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { combineProbes, redisProbe } from '../../src/observability/health.js';
import { createMetricsRegistry, startObservabilityServer } from '../../src/observability/metrics.js';

const clients: Redis[] = [];
afterAll(() => {
  for (const c of clients) c.disconnect();
});

describe('observability server', () => {
  it('serves the registry on /metrics and Redis reachability on /healthz', async () => {
    const registry = createMetricsRegistry({ defaultLabels: { role: 'test' } });
    const counter = new Counter({ name: 'obs_test_things_total', help: 'things', registers: [registry] });
    counter.inc(3);
    const up = new Redis('redis://127.0.0.1:6379', { lazyConnect: true });
    // Nothing listens on port 1: the probe must fail, not hang.
    const down = new Redis('redis://127.0.0.1:1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    down.on('error', () => {});
    clients.push(up, down);
    await up.connect();

    const healthy = await startObservabilityServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      health: combineProbes({ redis: redisProbe(up) }),
    });
    const sick = await startObservabilityServer({
      port: 0,
      host: '127.0.0.1',
      registry,
      health: combineProbes({ redis: redisProbe(down) }, 500),
    });
    try {
      const metrics = await fetch(`http://127.0.0.1:${healthy.port}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain('obs_test_things_total{role="test"} 3');

      const ok = await fetch(`http://127.0.0.1:${healthy.port}/healthz`);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ ok: true, checks: { redis: { ok: true } } });

      const bad = await fetch(`http://127.0.0.1:${sick.port}/healthz`);
      expect(bad.status).toBe(503);
      const body = (await bad.json()) as { ok: boolean; checks: { redis: { ok: boolean } } };
      expect(body.ok).toBe(false);
      expect(body.checks.redis.ok).toBe(false);

      expect((await fetch(`http://127.0.0.1:${healthy.port}/nope`)).status).toBe(404);
    } finally {
      await healthy.close();
      await sick.close();
    }
  });
});
