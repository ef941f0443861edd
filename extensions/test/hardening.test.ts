/**
 * Hardening seen from Directus, end to end (real Directus with the built bundle, PostgreSQL, Redis
 * and the real ingestion server): disabling a device closes its live session; retry and cancel
 * apply create's rules with the acting user's rights and record who acted; GraphQL creates work
 * for Operators; the system-write marker cannot be forged; bad ids are 400s.
 *
 * Needs `npm run build -w extensions` first (the harness loads extensions/dist).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { avlFrame, RawDevice } from '../../daemon/test/ingestion/support.js';
import { type CommandStack, startCommandStack } from './support/command-stack.js';
import { addDevice, userWithRole } from './support/commands-harness.js';

interface Command {
  id: number;
  status: string;
  text: string;
  attempts: number;
  cancelled_by: string | null;
  retried_by: string | null;
}

let stack: CommandStack;
let operator: string;
let operator2: string;
const sockets: RawDevice[] = [];

const me = async (token: string) => (await stack.api<{ id: string }>(token, 'GET', '/users/me?fields=id')).data.id;
const read = (id: number) => stack.read<Command>(id);
const create = (token: string, body: Record<string, unknown>) => stack.create<Command>(token, body);
const until = (id: number, status: string) => stack.untilStatus<Command>(id, status);

/** A command that expired (offline device, short lifetime) so that it can be retried. */
async function expiredCommand(token: string, device: number, text: string): Promise<Command> {
  const res = await create(token, { device, text, expires_at: new Date(Date.now() + 1500).toISOString() });
  expect(res.status, res.message).toBe(200);
  return until(res.data.id, 'expired');
}

beforeAll(async () => {
  stack = await startCommandStack({
    directus: {
      env: { FLEET_COMMAND_SWEEP_CRON: '*/1 * * * * *', LOG_LEVEL: 'warn' },
      // A loaded shared machine can take longer than the default 90 s to boot Directus.
      timeoutMs: 300_000,
    },
    ingestion: {
      instanceId: 'ing-hard',
      // A long cache: only the control signal can make the disabled device go away quickly.
      deviceCacheTtlMs: 600_000,
      commands: false,
    },
  });
  operator = await userWithRole(stack.api, stack.admin, stack.directus.login, 'Operator');
  operator2 = await userWithRole(stack.api, stack.admin, stack.directus.login, 'Operator');
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await stack?.stop();
});

describe('devices', () => {
  it('closes the live session of a device disabled in Directus; what it was acked is in the stream', async () => {
    const dev = await addDevice(stack.db.knex, 'Van disable');
    const socket = await RawDevice.connect(stack.ingestion.tcpPort);
    sockets.push(socket);
    expect(await socket.login(dev.imei)).toBe(1);
    socket.send(avlFrame(2));
    expect((await socket.read(4)).readUInt32BE(0)).toBe(2);
    const before = await stack.redis.redis.xlen(stack.redis.keys.telemetryAvl);

    const patch = await stack.api(stack.admin, 'PATCH', `/items/devices/${dev.id}`, { enabled: false });
    expect(patch.status).toBe(200);
    await socket.whenClosed;
    expect(await stack.redis.redis.xlen(stack.redis.keys.telemetryAvl)).toBe(before);
    const again = await RawDevice.connect(stack.ingestion.tcpPort);
    sockets.push(again);
    expect(await again.login(dev.imei)).toBe(0);
  });
});

describe('retry and cancel', () => {
  it('refuses an Operator retrying a command only an Administrator may create, and records who retried', async () => {
    const dev = await addDevice(stack.db.knex, 'Van retry');
    const adminOnly = await expiredCommand(stack.admin, dev.id, 'setparam 2004:fleet.example.org');
    const refused = await stack.api(operator, 'POST', `/fleet-commands/${adminOnly.id}/retry`);
    expect(refused.status).toBe(403);
    expect(refused.message).toMatch(/needs the Admin role/);
    expect((await read(adminOnly.id)).status).toBe('expired');

    const everyday = await expiredCommand(operator2, dev.id, 'getver');
    const retried = await stack.api<Command>(operator, 'POST', `/fleet-commands/${everyday.id}/retry`);
    expect(retried.status, retried.message).toBe(200);
    const operatorId = await me(operator);
    expect(retried.data.retried_by).toBe(operatorId);
    const activity = await stack.api<Array<{ user: string | null }>>(
      stack.admin,
      'GET',
      `/activity?filter[collection][_eq]=commands&filter[item][_eq]=${everyday.id}&filter[action][_eq]=update&fields=user`,
    );
    expect(activity.data.map((a) => a.user)).toContain(operatorId);
  });

  it("lets an Operator cancel another's everyday command (recorded), not an admin-only one", async () => {
    const dev = await addDevice(stack.db.knex, 'Van cancel');
    const adminOnly = await create(stack.admin, { device: dev.id, text: 'setparam 2005:7000' });
    const refused = await stack.api(operator, 'POST', `/fleet-commands/${adminOnly.data.id}/cancel`);
    expect(refused.status).toBe(403);
    expect((await read(adminOnly.data.id)).status).toBe('pending');

    const theirs = await create(operator2, { device: dev.id, text: 'getinfo' });
    const cancelled = await stack.api<Command>(operator, 'POST', `/fleet-commands/${theirs.data.id}/cancel`);
    expect(cancelled.status, cancelled.message).toBe(200);
    expect(cancelled.data.status).toBe('cancelled');
    expect(cancelled.data.cancelled_by).toBe(await me(operator));
  });

  it('answers 400 with a message for ids the database cannot hold', async () => {
    for (const path of ['/fleet-commands/99999999999999999999/cancel', '/fleet-commands/1e3/retry']) {
      const res = await stack.api(operator, 'POST', path);
      expect(res.status, path).toBe(400);
      expect(res.message).toMatch(/is not a command id/);
    }
  });
});

describe('create', () => {
  it('works through GraphQL for an Operator', async () => {
    const dev = await addDevice(stack.db.knex, 'Van graphql');
    const res = await fetch(`${stack.directus.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${operator}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        query: `mutation { create_commands_item(data: { device: ${dev.id}, text: "getinfo" }) { id status attempts } }`,
      }),
    });
    const body = (await res.json()) as {
      data?: { create_commands_item: { id: string; status: string; attempts: number } };
      errors?: { message: string }[];
    };
    expect(body.errors, JSON.stringify(body.errors)).toBeUndefined();
    expect(body.data?.create_commands_item).toMatchObject({ status: 'pending', attempts: 1 });
  });

  it('keeps lifecycle fields out of reach even with the extension origin forged', async () => {
    const dev = await addDevice(stack.db.knex, 'Van forged origin');
    const res = await fetch(`${stack.directus.url}/items/commands`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${operator}`,
        'content-type': 'application/json',
        origin: 'fleet-commands',
      },
      body: JSON.stringify({ device: dev.id, text: 'getinfo', status: 'answered', cancelled_by: null, response: 'x' }),
    });
    expect(res.status).toBe(403);
  });
});
