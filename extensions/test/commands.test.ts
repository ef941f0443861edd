/**
 * Commands end to end: a real Directus with the built bundle, real PostgreSQL and Redis, the real
 * ingestion server (in-process, and one in a child process for the crash case) and simulated
 * devices answering Codec 12.
 *
 * Needs `npm run build -w extensions` first (the harness loads extensions/dist).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeOutboundCommand, encodeCommandResponse, encodeRegistryValue } from '../../daemon/src/contract/index.js';
import type { SimulatedDevice } from '../../daemon/src/simulator/device.js';
import { createTestDatabase, startDirectus, startRedisCluster, waitFor } from '../../test/support/index.js';
import { type CommandStack, startCommandStack } from './support/command-stack.js';
import { addDevice, restClient, simulatedDevice, userWithRole } from './support/commands-harness.js';

interface Command {
  id: number;
  device: number;
  text: string;
  status: string;
  response: string | null;
  error: string | null;
  attempts: number;
  instance_id: string | null;
  queued_at: string | null;
  sent_at: string | null;
  answered_at: string | null;
  expires_at: string;
  user_created: string | null;
}

let stack: CommandStack;
let operator: string;
let viewer: string;
const devices: SimulatedDevice[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  stack = await startCommandStack({
    directus: {
      env: {
        // Fast sweeps so expiry and crash recovery show up within a test's wait.
        FLEET_COMMAND_SWEEP_CRON: '*/1 * * * * *',
        FLEET_COMMAND_LOST_AFTER_SECONDS: 2,
        FLEET_COMMAND_CLAIM_IDLE_MS: 2000,
        LOG_LEVEL: 'warn',
      },
    },
    ingestion: { instanceId: 'ing-b', deviceCacheTtlMs: 0, commandTimeoutMs: 20_000 },
  });
  operator = await userWithRole(stack.api, stack.admin, stack.directus.login, 'Operator');
  viewer = await userWithRole(stack.api, stack.admin, stack.directus.login, 'Viewer');
});

afterAll(async () => {
  await Promise.allSettled(devices.map((d) => d.close()));
  for (const c of children) c.kill('SIGKILL');
  await stack?.stop();
});

async function online(name: string, port = stack.ingestion.tcpPort, answer = true, on = stack) {
  const dev = await addDevice(on.db.knex, name);
  const sim = simulatedDevice(dev.imei, port, answer);
  devices.push(sim);
  expect(await sim.connect()).toBe(true);
  await waitFor(
    'registry',
    async () => (await on.redis.redis.hget(on.redis.keys.connectionsRegistry, dev.imei)) ?? undefined,
  );
  return { ...dev, sim };
}

const read = (id: number) => stack.read<Command>(id);
const create = (token: string, body: Record<string, unknown>) => stack.create<Command>(token, body);
const until = (id: number, status: string, timeoutMs?: number) => stack.untilStatus<Command>(id, status, timeoutMs);

describe('commands end to end', () => {
  it('answers a command for an online device, with times and the reply text', async () => {
    const dev = await online('Van online');
    const res = await create(operator, { device: dev.id, text: 'getver' });
    expect(res.status).toBe(200);
    // The dispatch may already have queued it by the time the created item is read back.
    expect(['pending', 'queued']).toContain(res.data.status);
    const done = await until(res.data.id, 'answered');
    expect(done.response).toMatch(new RegExp(`^Ver:.* IMEI:${dev.imei} `));
    expect(done.instance_id).toBe('ing-b');
    expect(done.attempts).toBe(1);
    expect(done.user_created).not.toBeNull();
    const [queued, sent, answered] = [done.queued_at, done.sent_at, done.answered_at].map((t) => Date.parse(String(t)));
    expect(queued).toBeLessThanOrEqual(sent as number);
    expect(sent).toBeLessThanOrEqual(answered as number);
    expect(dev.sim.answered.map((a) => a.command)).toEqual(['getver']);
    // The lifecycle went through Directus services: each write is a revision.
    const revisions = await stack.api<Array<{ data: { status?: string } }>>(
      stack.admin,
      'GET',
      `/revisions?filter[collection][_eq]=commands&filter[item][_eq]=${done.id}&sort=id&fields=data`,
    );
    // (`sent` and `answered` read in one batch are written as one step.)
    const steps = revisions.data.map((r) => r.data.status);
    expect(steps.filter((s) => s !== 'sent')).toEqual(['pending', 'queued', 'answered']);
    expect(steps.length).toBeLessThanOrEqual(4);
  });

  it('shows each status change to a realtime (WebSocket) subscriber', async () => {
    const dev = await online('Van realtime');
    const ws = new WebSocket(`${stack.directus.url.replace(/^http/, 'ws')}/websocket?access_token=${operator}`);
    const seen: Array<{ id: number; status: string; response: string | null }> = [];
    let subscribed = false;
    ws.addEventListener('message', (ev) => {
      const msg = JSON.parse(String(ev.data)) as { type: string; event?: string; data?: Command[] };
      if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
      if (msg.type === 'subscription' && msg.event === 'init') subscribed = true;
      if (msg.type === 'subscription' && msg.event === 'update') for (const c of msg.data ?? []) seen.push(c);
    });
    await once(ws, 'open');
    ws.send(
      JSON.stringify({ type: 'subscribe', collection: 'commands', query: { fields: ['id', 'status', 'response'] } }),
    );
    try {
      await waitFor('the subscription', async () => (subscribed ? true : undefined));
      const res = await create(operator, { device: dev.id, text: 'getver' });
      const last = await waitFor('an answered update over the WebSocket', async () =>
        seen.find((c) => Number(c.id) === res.data.id && c.status === 'answered'),
      );
      expect(last.response).toMatch(/^Ver:/);
      // One event per write (queued, then sent/answered, possibly folded into one).
      const steps = seen.filter((c) => Number(c.id) === res.data.id).map((c) => c.status);
      expect(steps.length).toBeGreaterThanOrEqual(2);
      expect(steps.at(-1)).toBe('answered');
    } finally {
      ws.close();
    }
  });

  it('keeps a command for an offline device pending, then sends it when the device connects', async () => {
    const dev = await addDevice(stack.db.knex, 'Van offline');
    const res = await create(operator, { device: dev.id, text: 'getinfo' });
    expect(res.status).toBe(200);
    // Several sweeps run meanwhile; none may move it.
    await new Promise((r) => setTimeout(r, 2500));
    expect((await read(res.data.id)).status).toBe('pending');
    const sim = simulatedDevice(dev.imei, stack.ingestion.tcpPort);
    devices.push(sim);
    expect(await sim.connect()).toBe(true);
    const done = await until(res.data.id, 'answered');
    expect(done.response).toMatch(/^INI:.* RTC:/);
  });

  it('answers two commands for one device in creation order', async () => {
    const dev = await online('Van order');
    const first = await create(operator, { device: dev.id, text: 'setdigout 1' });
    const second = await create(operator, { device: dev.id, text: 'getio' });
    const a = await until(first.data.id, 'answered');
    const b = await until(second.data.id, 'answered');
    expect(dev.sim.answered.map((x) => x.command)).toEqual(['setdigout 1', 'getio']);
    expect(Date.parse(String(a.answered_at))).toBeLessThanOrEqual(Date.parse(String(b.sent_at)));
    // The second reply reflects the first command's effect on the device.
    expect(b.response).toMatch(/DO1:1/);
  });

  it('expires a command that could not be sent before expires_at', async () => {
    const dev = await addDevice(stack.db.knex, 'Van expiring');
    const res = await create(operator, {
      device: dev.id,
      text: 'getgps',
      expires_at: new Date(Date.now() + 1500).toISOString(),
    });
    expect(res.status).toBe(200);
    const done = await until(res.data.id, 'expired');
    expect(done.error).toMatch(/expired/);
    // Connecting later sends nothing.
    const sim = simulatedDevice(dev.imei, stack.ingestion.tcpPort);
    devices.push(sim);
    await sim.connect();
    await new Promise((r) => setTimeout(r, 1500));
    expect(sim.answered).toEqual([]);
    expect((await read(res.data.id)).status).toBe('expired');
  });

  it('cancels a pending command (never sent) and refuses to cancel an answered one', async () => {
    const dev = await addDevice(stack.db.knex, 'Van cancel');
    const res = await create(operator, { device: dev.id, text: 'getver' });
    const cancelled = await stack.api<Command>(operator, 'POST', `/fleet-commands/${res.data.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.data.status).toBe('cancelled');
    const sim = simulatedDevice(dev.imei, stack.ingestion.tcpPort);
    devices.push(sim);
    await sim.connect();
    const later = await create(operator, { device: dev.id, text: 'getinfo' });
    await until(later.data.id, 'answered');
    expect(sim.answered.map((a) => a.command)).toEqual(['getinfo']);
    expect((await read(res.data.id)).status).toBe('cancelled');

    const again = await stack.api(operator, 'POST', `/fleet-commands/${later.data.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.message).toMatch(/only pending or queued/);
    expect((await stack.api(viewer, 'POST', `/fleet-commands/${res.data.id}/cancel`)).status).toBe(403);
    const anonymous = await fetch(`${stack.directus.url}/fleet-commands/${res.data.id}/cancel`, { method: 'POST' });
    expect(anonymous.status).toBe(403);
  });

  it('refuses invalid text, bad payloads and unknown or disabled devices with a message', async () => {
    const dev = await addDevice(stack.db.knex, 'Van invalid');
    const disabled = await addDevice(stack.db.knex, 'Van disabled', false);
    const before = (await stack.api<Command[]>(stack.admin, 'GET', '/items/commands?limit=-1&fields=id')).data.length;
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ device: dev.id, text: 'getinfo\u0007' }, /printable ASCII/],
      [{ device: dev.id, text: '   ' }, /text is required/],
      [{ device: dev.id, text: 'x'.repeat(1025) }, /limit is 1024/],
      [{ device: dev.id, text: 'raw', payload_hex: '0x12' }, /only hex digits/],
      [{ device: dev.id, text: 'getinfo', expires_at: '2020-01-01T00:00:00Z' }, /Expiry must be in the future/],
      [{ device: 999_999, text: 'getinfo' }, /Device 999999 does not exist/],
      [{ device: disabled.id, text: 'getinfo' }, /disabled/],
    ];
    for (const [body, message] of cases) {
      const res = await create(operator, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.message).toMatch(message);
    }
    expect((await stack.api<Command[]>(stack.admin, 'GET', '/items/commands?limit=-1&fields=id')).data.length).toBe(
      before,
    );
  });

  it('lets a Viewer read but not create, and keeps deny-listed commands for admins', async () => {
    const dev = await addDevice(stack.db.knex, 'Van roles');
    const res = await create(viewer, { device: dev.id, text: 'getinfo' });
    expect(res.status).toBe(403);
    expect(res.message).toMatch(/may not send commands/);
    const denied = await create(operator, { device: dev.id, text: 'setparam 2004:evil.example.com' });
    expect(denied.status).toBe(403);
    expect(denied.message).toMatch(/needs the Admin role/);
    const byAdmin = await create(stack.admin, { device: dev.id, text: 'setparam 2004:fleet.example.org' });
    expect(byAdmin.status).toBe(200);
  });

  it('refuses a sender forging lifecycle fields, on create and on update', async () => {
    const dev = await addDevice(stack.db.knex, 'Van forge');
    const forged = await create(operator, { device: dev.id, text: 'getver', status: 'answered', response: 'fake' });
    expect(forged.status).toBe(403);
    expect(forged.message).toMatch(/"status" is set by the system/);
    const ok = await create(operator, { device: dev.id, text: 'getver' });
    const forge = (token: string) =>
      stack.api(token, 'PATCH', `/items/commands/${ok.data.id}`, { status: 'answered', response: 'fake' });
    // The seeded Operator may not update commands at all, so Directus answers that itself. The
    // hook's rule holds for anyone Directus lets update them: an admin, or an Operator whose policy
    // an admin widened (Core tier permissions are all fields or none).
    expect((await forge(operator)).status).toBe(403);
    const policies = await stack.api<{ id: string }[]>(
      stack.admin,
      'GET',
      '/policies?filter[name][_eq]=Fleet%20Operator&fields=id',
    );
    const grant = await stack.api<{ id: number }>(stack.admin, 'POST', '/permissions', {
      policy: policies.data[0]?.id,
      collection: 'commands',
      action: 'update',
      fields: ['*'],
    });
    expect(grant.status).toBe(200);
    try {
      for (const token of [operator, stack.admin]) {
        const patch = await forge(token);
        expect(patch.status).toBe(403);
        expect(patch.message).toMatch(/Commands cannot be edited \(status, response\)/);
      }
    } finally {
      await stack.api(stack.admin, 'DELETE', `/permissions/${grant.data.id}`);
    }
    const c = await read(ok.data.id);
    expect([c.status, c.response]).toEqual(['pending', null]);
  });

  it('re-dispatches a sent command to the new instance after its instance was killed', async () => {
    // Node itself (not the tsx wrapper, which would leave its own child running after a SIGKILL).
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(process.cwd(), 'daemon/test/ingestion/child-ingest.ts')],
      {
        env: {
          ...process.env,
          INGEST_CHILD: JSON.stringify({
            instanceId: 'ing-a',
            redisUrl: stack.redis.url,
            prefix: stack.redis.prefix,
            db: stack.db.connection,
            heartbeatTtlSeconds: 2,
            heartbeatRefreshMs: 500,
            commandTimeoutMs: 60_000,
            deviceCacheTtlMs: 0,
          }),
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(child);
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const tcpPort = Number(/READY (\d+)/.exec(line.toString())?.[1]);

    // The device is on instance A and never answers there: the command stays `sent`.
    const dev = await online('Van crash', tcpPort, false);
    const res = await create(operator, { device: dev.id, text: 'getver' });
    const sent = await until(res.data.id, 'sent');
    expect(sent.instance_id).toBe('ing-a');

    child.kill('SIGKILL');
    await once(child, 'exit');
    // Its heartbeat expires; the sweeper puts the command back to pending as attempt 2.
    const back = await waitFor('the command to be re-dispatched', async () => {
      const c = await read(res.data.id);
      return c.attempts === 2 ? c : undefined;
    });
    expect(back.error).toMatch(/instance ing-a stopped/);

    // The device reconnects to instance B and gets the command again.
    const sim = simulatedDevice(dev.imei, stack.ingestion.tcpPort);
    devices.push(sim);
    expect(await sim.connect()).toBe(true);
    const done = await until(res.data.id, 'answered');
    expect(done.instance_id).toBe('ing-b');
    expect(done.attempts).toBe(2);
    expect(sim.answered.map((a) => a.command)).toEqual(['getver']);
  });
});

// A test acting as an ingestion instance: it reads the outbound stream and writes responses with
// the contract's encoders, so stale, duplicate and out-of-order outcomes can be produced on purpose.
describe('commands against a protocol peer', () => {
  const peer = 'peer-x';

  async function peerDevice(name: string) {
    const dev = await addDevice(stack.db.knex, name);
    await stack.redis.redis.set(stack.redis.keys.heartbeat(peer), '1', 'EX', 300);
    await stack.redis.redis.hset(
      stack.redis.keys.connectionsRegistry,
      dev.imei,
      encodeRegistryValue({ instance: peer, connectedAt: Date.now() }),
    );
    return dev;
  }

  async function outbound() {
    const entries = (await stack.redis.redis.xrange(stack.redis.keys.commandsOutbound(peer), '-', '+')) as Array<
      [string, string[]]
    >;
    return entries.map(([, f]) => decodeOutboundCommand(f));
  }

  const respond = (commandId: number, imei: string, outcome: string, attempt: number, response = '') =>
    stack.redis.redis.xadd(
      stack.redis.keys.commandsResponses,
      '*',
      ...encodeCommandResponse({
        commandId: String(commandId),
        imei,
        instance: peer,
        outcome: outcome as 'sent',
        attempt,
        response,
        at: Date.now(),
      }),
    );

  it('applies outcomes idempotently and never moves an answered command back', async () => {
    const dev = await peerDevice('Peer monotonic');
    // A raw hex payload that is not a printable command is an Administrator's to send.
    const res = await create(stack.admin, { device: dev.id, text: 'getver', payload_hex: '0A0b' });
    const queued = await until(res.data.id, 'queued');
    expect(queued.instance_id).toBe(peer);
    expect((await outbound()).filter((c) => c.commandId === String(res.data.id))).toEqual([
      {
        commandId: String(res.data.id),
        imei: dev.imei,
        text: 'getver',
        payloadHex: '0a0b',
        expiresAt: Date.parse(queued.expires_at),
        attempt: 1,
      },
    ]);
    await respond(res.data.id, dev.imei, 'answered', 1, 'first answer');
    await until(res.data.id, 'answered');
    await respond(res.data.id, dev.imei, 'sent', 1);
    await respond(res.data.id, dev.imei, 'answered', 1, 'duplicate answer');
    await respond(res.data.id, dev.imei, 'failed', 1);
    // A marker command behind them in the same stream shows they were all consumed.
    const marker = await create(operator, { device: dev.id, text: 'getinfo' });
    await until(marker.data.id, 'queued');
    await respond(marker.data.id, dev.imei, 'failed', 1);
    await until(marker.data.id, 'failed');
    const c = await read(res.data.id);
    expect([c.status, c.response, c.sent_at !== null]).toEqual(['answered', 'first answer', true]);
  });

  it('recovers a queued command whose outbound entry was lost, and ignores the stale attempt', async () => {
    const dev = await peerDevice('Peer lost');
    const res = await create(operator, { device: dev.id, text: 'getgps' });
    await until(res.data.id, 'queued');
    await stack.redis.redis.del(stack.redis.keys.commandsOutbound(peer));
    const again = await waitFor('the command to be queued again as attempt 2', async () =>
      (await outbound()).find((c) => c.commandId === String(res.data.id) && c.attempt === 2),
    );
    expect(again.text).toBe('getgps');
    await until(res.data.id, 'queued');
    await respond(res.data.id, dev.imei, 'answered', 1, 'stale');
    await respond(res.data.id, dev.imei, 'answered', 2, 'GPS:1 Sat:9');
    const done = await until(res.data.id, 'answered');
    expect([done.response, done.attempts]).toEqual(['GPS:1 Sat:9', 2]);
  });

  it('withdraws a cancelled queued command from the outbound stream', async () => {
    const dev = await peerDevice('Peer cancel');
    const res = await create(operator, { device: dev.id, text: 'getver' });
    await until(res.data.id, 'queued');
    expect((await outbound()).some((c) => c.commandId === String(res.data.id))).toBe(true);
    const cancelled = await stack.api<Command>(operator, 'POST', `/fleet-commands/${res.data.id}/cancel`);
    expect(cancelled.data.status).toBe('cancelled');
    expect((await outbound()).some((c) => c.commandId === String(res.data.id))).toBe(false);
    // An outcome arriving anyway (the instance had read it) changes nothing.
    await respond(res.data.id, dev.imei, 'answered', 1, 'too late');
    const marker = await create(operator, { device: dev.id, text: 'getinfo' });
    await until(marker.data.id, 'queued');
    await respond(marker.data.id, dev.imei, 'failed', 1);
    await until(marker.data.id, 'failed');
    expect((await read(res.data.id)).status).toBe('cancelled');
  });

  it('re-dispatches on not_held and fails the command once attempts are spent', async () => {
    const dev = await peerDevice('Peer not held');
    const res = await create(operator, { device: dev.id, text: 'getver' });
    for (let attempt = 1; attempt <= 5; attempt++) {
      await waitFor(`attempt ${attempt} on the outbound stream`, async () =>
        (await outbound()).find((c) => c.commandId === String(res.data.id) && c.attempt === attempt),
      );
      await respond(res.data.id, dev.imei, 'not_held', attempt);
    }
    const failed = await until(res.data.id, 'failed');
    expect(failed.error).toMatch(/no longer holds the device; gave up after 5 attempt/);
    const retried = await stack.api<Command>(operator, 'POST', `/fleet-commands/${res.data.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.data.attempts).toBe(6);
    expect(['pending', 'queued']).toContain(retried.data.status);
  });
});

describe('commands with two Directus instances', () => {
  it('re-dispatches an orphaned command exactly once although both run the sweeper', async () => {
    // Same database and Redis prefix: a second API node of the same deployment. Runs last in
    // this file because stopping it clears the shared prefix.
    const second = await startDirectus({
      database: stack.db,
      redisPrefix: stack.redis.prefix,
      env: { FLEET_COMMAND_SWEEP_CRON: '*/1 * * * * *', LOG_LEVEL: 'warn' },
    });
    try {
      const dev = await addDevice(stack.db.knex, 'Two nodes');
      await stack.redis.redis.set(stack.redis.keys.heartbeat('peer-y'), '1', 'EX', 300);
      await stack.redis.redis.hset(
        stack.redis.keys.connectionsRegistry,
        dev.imei,
        encodeRegistryValue({ instance: 'peer-y', connectedAt: Date.now() }),
      );
      // Created through the second node, swept by both.
      // (Its own SECRET: only the static stack.admin token is valid on both nodes.)
      const res = await restClient(second.url)<Command>(second.adminToken, 'POST', '/items/commands', {
        device: dev.id,
        text: 'getver',
      });
      expect(res.status).toBe(200);
      await until(res.data.id, 'queued');
      await stack.redis.redis.del(stack.redis.keys.heartbeat('peer-y'));
      await waitFor('the re-dispatch', async () => ((await read(res.data.id)).attempts === 2 ? true : undefined));
      await new Promise((r) => setTimeout(r, 3000));
      const c = await read(res.data.id);
      expect([c.status, c.attempts]).toEqual(['pending', 2]);
      const revisions = await stack.api<Array<{ data: { status?: string } }>>(
        stack.admin,
        'GET',
        `/revisions?filter[collection][_eq]=commands&filter[item][_eq]=${c.id}&sort=id&fields=data`,
      );
      expect(revisions.data.map((r) => r.data.status)).toEqual(['pending', 'queued', 'pending']);
    } finally {
      await second.stop();
    }
  }, 180_000);
});

describe('commands without Redis', () => {
  it('starts, validates and keeps commands pending when Directus has no Redis', async () => {
    const db2 = await createTestDatabase();
    const plain = await startDirectus({ database: db2, redisPrefix: false, env: { LOG_LEVEL: 'warn' } });
    try {
      const api2 = restClient(plain.url);
      const dev = await addDevice(db2.knex, 'No redis van');
      const bad = await api2(plain.adminToken, 'POST', '/items/commands', { device: dev.id, text: '' });
      expect(bad.status).toBe(400);
      const res = await api2<Command>(plain.adminToken, 'POST', '/items/commands', { device: dev.id, text: 'getver' });
      expect(res.status).toBe(200);
      await new Promise((r) => setTimeout(r, 1000));
      expect((await api2<Command>(plain.adminToken, 'GET', `/items/commands/${res.data.id}`)).data.status).toBe(
        'pending',
      );
      // The extension said why, and nothing crashed on a missing connection.
      const log = readFileSync(plain.logFile, 'utf8');
      expect(log).toMatch(/REDIS is not set; commands will stay pending/);
      expect(log).not.toMatch(/ECONNREFUSED|Unhandled/);
    } finally {
      await plain.stop();
      await db2.drop();
    }
  }, 180_000);
});

describe('commands on a Redis Cluster', () => {
  // The telemetry plane on a 3-master cluster (REDIS_CLUSTER_NODES); Directus itself keeps the
  // single Redis. The same journeys as above: answered online, sent on connect when offline.
  let on: CommandStack;

  beforeAll(async () => {
    on = await startCommandStack({
      cluster: await startRedisCluster(),
      directus: { env: { FLEET_COMMAND_SWEEP_CRON: '*/1 * * * * *', LOG_LEVEL: 'warn' } },
      ingestion: { instanceId: 'ing-cluster', deviceCacheTtlMs: 0, commandTimeoutMs: 20_000 },
    });
  }, 180_000);
  afterAll(() => on?.stop());

  it('answers a command for an online device, and sends one created offline when its device connects', async () => {
    const dev = await online('Van on the cluster', on.ingestion.tcpPort, true, on);
    const res = await on.create<Command>(on.admin, { device: dev.id, text: 'getver' });
    expect(res.status).toBe(200);
    const done = await on.untilStatus<Command>(res.data.id, 'answered');
    expect(done.response).toMatch(new RegExp(`^Ver:.* IMEI:${dev.imei} `));
    expect(done.instance_id).toBe('ing-cluster');

    const later = await addDevice(on.db.knex, 'Van offline on the cluster');
    const pending = await on.create<Command>(on.admin, { device: later.id, text: 'getinfo' });
    expect(pending.data.status).toBe('pending');
    const sim = simulatedDevice(later.imei, on.ingestion.tcpPort);
    devices.push(sim);
    expect(await sim.connect()).toBe(true);
    expect((await on.untilStatus<Command>(pending.data.id, 'answered')).response).toMatch(/^INI:.* RTC:/);

    // Pipeline health reads the cluster: every telemetry partition, the live instance and its devices.
    const health = await fetch(`${on.directus.url}/fleet/health`, { headers: { authorization: `Bearer ${on.admin}` } });
    expect(health.status).toBe(200);
    const body = (await health.json()) as {
      streams: { stream: string }[];
      instances: { id: string; connections: number }[];
    };
    expect(body.streams.filter((s) => s.stream.endsWith('telemetry:avl'))).toHaveLength(on.redis.keys.telemetry.length);
    expect(body.instances.map((i) => [i.id, i.connections])).toEqual([['ing-cluster', 2]]);
  });
});
