/**
 * Health checks for `/healthz`: small async probes combined into one answer. A probe that does not
 * answer within its timeout counts as failed, so a hung dependency shows as unhealthy, not as a
 * hung health endpoint.
 */
import type { Redis } from 'ioredis';

export interface HealthStatus {
  ok: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

export type HealthCheck = () => Promise<HealthStatus>;

/** A named probe: resolves when healthy, rejects (or times out) otherwise. */
export type Probe = () => Promise<unknown>;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** Runs every probe in parallel; healthy only if all are. */
export function combineProbes(probes: Record<string, Probe>, timeoutMs = 2000): HealthCheck {
  return async () => {
    const names = Object.keys(probes);
    const results = await Promise.allSettled(
      names.map((n) => withTimeout(Promise.resolve().then(probes[n]), timeoutMs)),
    );
    const checks: HealthStatus['checks'] = {};
    results.forEach((r, i) => {
      const name = names[i] as string;
      checks[name] =
        r.status === 'fulfilled'
          ? { ok: true }
          : { ok: false, detail: r.reason instanceof Error ? r.reason.message : String(r.reason) };
    });
    return { ok: Object.values(checks).every((c) => c.ok), checks };
  };
}

/** Redis answers PING. */
export function redisProbe(redis: Redis): Probe {
  return async () => {
    const pong = await redis.ping();
    if (pong !== 'PONG') throw new Error(`unexpected PING answer: ${pong}`);
  };
}
