/**
 * Waiting in tests, scripts and benchmarks: one poll loop and one free-port finder.
 *
 * `waitFor` bounds how long a condition may take to come true; it is not a timing assertion (the
 * bound is generous and a slow machine only makes it slower).
 */
export { freePort } from '../../directus/src/net.mjs';

/**
 * Polls `probe` until it returns something other than undefined, null or false, and returns that.
 * A probe that throws is tried again; the last error is named if time runs out.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
