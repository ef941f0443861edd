/**
 * The extension's Redis connections live as long as Directus: a real Directus with the built bundle
 * on a private redis-server. While it runs, CLIENT LIST shows the extension's named clients (the
 * shared one, which the fleet endpoint's health route also uses, and the stream consumers'); when
 * Directus is stopped (SIGTERM), the shared client says QUIT before the process ends and none of
 * them is left. A client that were only dropped by the process exit would send no QUIT.
 */
import { Redis } from 'ioredis';
import { beforeAll, expect, it } from 'vitest';
import {
  type OwnRedis,
  startDirectus,
  startOwnRedis,
  type TestDirectus,
  useTestStack,
  waitFor,
} from '../../test/support/index.js';

const stack = useTestStack();
let own: OwnRedis;
let directus: TestDirectus;
let admin: Redis;

beforeAll(async () => {
  own = stack.started(await startOwnRedis(), (o) => o.stop());
  admin = stack.started(new Redis(own.url), (r) => r.disconnect());
  directus = stack.started(
    await startDirectus({ database: stack.db, env: { REDIS: own.url, LOG_LEVEL: 'warn' }, timeoutMs: 300_000 }),
    (d) => d.stop(),
  );
}, 360_000);

/** The extension's connections: name → address. */
async function extensionClients(): Promise<Map<string, string>> {
  const list = (await admin.client('LIST')) as string;
  const clients = new Map<string, string>();
  for (const line of list.split('\n')) {
    const name = /\bname=(\S*)/.exec(line)?.[1] ?? '';
    const addr = /\baddr=(\S+)/.exec(line)?.[1];
    if (addr && name.startsWith('fleet-extension-')) clients.set(name, addr);
  }
  return clients;
}

it('closes every Redis client of the extension when Directus stops, the shared one with QUIT', async () => {
  const health = await fetch(`${directus.url}/fleet/health`, {
    headers: { authorization: `Bearer ${directus.adminToken}` },
  });
  expect(health.status).toBe(200);
  const running = await waitFor('the extension clients', async () => {
    const c = await extensionClients();
    return c.has('fleet-extension-cmd') && c.has('fleet-extension-responses') && c.has('fleet-extension-events')
      ? c
      : undefined;
  });

  const monitor = await admin.monitor();
  const seen: { addr: string; args: string[] }[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ addr: source, args }));
  try {
    await directus.stop();
    await waitFor('no extension client left', async () => ((await extensionClients()).size === 0 ? true : undefined));
  } finally {
    monitor.disconnect();
  }
  const shared = running.get('fleet-extension-cmd');
  expect(seen.filter((c) => c.addr === shared).map((c) => c.args[0]?.toLowerCase())).toContain('quit');
}, 120_000);
