/**
 * The schema and the harness against a real Directus 12.4 on a clone of the template:
 * collections visible over REST, no first-login prompts, snapshot in sync, validation,
 * natural key, millisecond timestamps, roles.
 *
 * Harness API: see test/support/index.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareSchema } from '../directus/src/deploy.mjs';
import { createTestDatabase, startDirectus, type TestDatabase, type TestDirectus } from './support/index.js';

let db: TestDatabase;
let directus: TestDirectus;

async function api(path: string, init: RequestInit & { token?: string } = {}) {
  const res = await fetch(`${directus.url}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${init.token ?? directus.adminToken}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  db = await createTestDatabase();
  directus = await startDirectus({ database: db });
});

afterAll(async () => {
  await directus?.stop();
  await db?.drop();
});

describe('schema', () => {
  it('exposes devices, positions and commands to the admin', async () => {
    for (const collection of ['devices', 'positions', 'commands']) {
      const res = await api(`/items/${collection}`);
      expect(res.status, collection).toBe(200);
      expect(res.body.data).toEqual([]);
    }
    const fields = await api('/fields/positions');
    const names = fields.body.data.map((f: { field: string }) => f.field).sort();
    expect(names).toEqual(
      [
        'altitude',
        'attributes',
        'device',
        'event_io_id',
        'fix_time',
        'flags',
        'heading',
        'id',
        'io',
        'location',
        'priority',
        'received_at',
        'satellites',
        'speed',
      ].sort(),
    );
  });

  it('needs no owner or license prompt on the first admin login', async () => {
    const token = await directus.login(directus.adminEmail, directus.adminPassword);
    const settings = await api('/settings', { token });
    expect(settings.body.data.project_owner).toBe(directus.adminEmail);
    expect(settings.body.data.project_usage).toBe('commercial');
    // The Studio's setup step is shown only while `setup` is present in /server/info.
    const info = await api('/server/info', { token });
    expect(info.body.data.setup).toBeUndefined();
  });

  it('is exactly what snapshots/schema.yaml describes (schema apply --dry-run finds nothing)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'fleet-dryrun-'));
    try {
      const same = await compareSchema({ connection: db.connection, stateDir });
      expect(same.output).toMatch(/No changes to apply/);
      expect(same.inSync).toBe(true);
      // Control: a drifted field is reported.
      await db.knex('directus_fields').where({ collection: 'devices', field: 'name' }).update({ note: 'drifted' });
      const drifted = await compareSchema({ connection: db.connection, stateDir });
      expect(drifted.inSync).toBe(false);
      expect(drifted.output).toMatch(/Update devices\.name/);
    } finally {
      await db
        .knex('directus_fields')
        .where({ collection: 'devices', field: 'name' })
        .update({ note: 'Display name.' });
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 180_000); // two Directus CLI runs

  it('refuses an IMEI that is not 15 digits, and a duplicate one', async () => {
    const bad = await api('/items/devices', { method: 'POST', body: JSON.stringify({ imei: '12345', name: 'x' }) });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].extensions.code).toBe('FAILED_VALIDATION');
    const letters = await api('/items/devices', { method: 'POST', body: JSON.stringify({ imei: '35630704244101A' }) });
    expect(letters.status).toBe(400);

    const ok = await api('/items/devices', { method: 'POST', body: JSON.stringify({ imei: '356307042441013' }) });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatchObject({ imei: '356307042441013', enabled: true, online: false });
    const dup = await api('/items/devices', { method: 'POST', body: JSON.stringify({ imei: '356307042441013' }) });
    expect(dup.status).toBe(400);
    expect(dup.body.errors[0].extensions.code).toBe('RECORD_NOT_UNIQUE');
    // The daemon writes with SQL, past Directus's validation: the database refuses too.
    await expect(db.knex('devices').insert({ imei: '35630704244101' })).rejects.toThrow(/devices_imei_15_digits/);
  });

  it('keys positions on (device, fix_time, event_io_id) and keeps milliseconds', async () => {
    const [device] = await db.knex('devices').insert({ imei: '356307042441099', name: 'key test' }).returning('id');
    const row = { device: device.id, fix_time: '2026-11-25T10:00:00.123Z', event_io_id: 0, flags: JSON.stringify([]) };
    // The primary key is derived from the natural key, as the processor's writer does it.
    const insert = (r: typeof row) =>
      db.knex('positions').insert({
        ...r,
        id: db.knex.raw('position_id(?::int, ?::timestamptz, ?::int)', [r.device, r.fix_time, r.event_io_id]),
      });
    await insert(row);
    // A resend of the same record collapses...
    const resent = await insert(row).onConflict('id').ignore();
    expect(resent).toHaveProperty('rowCount', 0);
    await expect(insert(row)).rejects.toThrow(/duplicate key value violates unique constraint/);
    // ...while another event in the same millisecond, or the next millisecond, is kept.
    await insert({ ...row, event_io_id: 239 });
    await insert({ ...row, fix_time: '2026-11-25T10:00:00.124Z' });
    const { count } = (await db.knex('positions').count({ count: '*' }).first()) as { count: string };
    expect(Number(count)).toBe(3);

    const res = await api(
      `/items/positions?filter[device][_eq]=${device.id}&sort=fix_time&fields=fix_time,event_io_id`,
    );
    expect(res.body.data.map((p: { fix_time: string }) => new Date(p.fix_time).toISOString())).toEqual([
      '2026-11-25T10:00:00.123Z',
      '2026-11-25T10:00:00.123Z',
      '2026-11-25T10:00:00.124Z',
    ]);
    // Deleting the device removes its positions.
    await db.knex('devices').where({ id: device.id }).delete();
    const left = (await db.knex('positions').count({ count: '*' }).first()) as { count: string };
    expect(Number(left.count)).toBe(0);
  });

  it('stores points as GeoJSON in SRID 4326', async () => {
    const res = await api('/items/devices', {
      method: 'POST',
      body: JSON.stringify({ imei: '356307042441021', last_location: { type: 'Point', coordinates: [25.28, 54.68] } }),
    });
    expect(res.status).toBe(200);
    expect(res.body.data.last_location).toEqual({ type: 'Point', coordinates: [25.28, 54.68] });
    const srid = await db.knex.raw('SELECT ST_SRID(last_location) AS srid FROM devices WHERE id = ?', [
      res.body.data.id,
    ]);
    expect(srid.rows[0].srid).toBe(4326);
  });

  it('gives commands the creating user and column defaults', async () => {
    const device = await api('/items/devices', { method: 'POST', body: JSON.stringify({ imei: '356307042441039' }) });
    const created = await api('/items/commands', {
      method: 'POST',
      body: JSON.stringify({ device: device.body.data.id, text: 'getinfo' }),
    });
    expect(created.status).toBe(200);
    const me = await api('/users/me');
    expect(created.body.data.user_created).toBe(me.body.data.id);
    expect(created.body.data.created_at).toEqual(expect.any(String));
    // Column defaults (checked in SQL: the extension's hooks may act on REST writes).
    const [row] = await db
      .knex('commands')
      .insert({ device: device.body.data.id, text: 'getver' })
      .returning(['status', 'attempts']);
    // attempts defaults to 1 so GraphQL does not treat it as a required input (hardening).
    expect(row).toEqual({ status: 'pending', attempts: 1 });
    await expect(
      db.knex('commands').insert({ device: device.body.data.id, text: 'getver', status: 'lost' }),
    ).rejects.toThrow(/commands_status_known/);
  });

  it('seeds Operator (reads all, creates commands) and Viewer (reads only) roles', async () => {
    const roles = await api('/roles?fields=name,policies.policy.name');
    const names = roles.body.data.map((r: { name: string }) => r.name);
    expect(names).toEqual(expect.arrayContaining(['Administrator', 'Operator', 'Viewer']));

    const password = 'viewer-test-password';
    const viewerRole = roles.body.data.find((r: { name: string }) => r.name === 'Viewer');
    expect(viewerRole.policies[0].policy.name).toBe('Fleet Viewer');
    const rolesWithIds = await api('/roles?fields=id,name');
    const roleId = (name: string) => rolesWithIds.body.data.find((r: { name: string }) => r.name === name).id;
    for (const [email, role] of [
      ['viewer@example.com', 'Viewer'],
      ['operator@example.com', 'Operator'],
    ]) {
      const u = await api('/users', { method: 'POST', body: JSON.stringify({ email, password, role: roleId(role!) }) });
      expect(u.status).toBe(200);
    }
    const device = await api('/items/devices', { method: 'POST', body: JSON.stringify({ imei: '356307042441047' }) });
    const command = JSON.stringify({ device: device.body.data.id, text: 'getver' });

    const viewer = await directus.login('viewer@example.com', password);
    expect((await api('/items/devices', { token: viewer })).status).toBe(200);
    expect((await api('/items/positions', { token: viewer })).status).toBe(200);
    expect((await api('/items/commands', { method: 'POST', body: command, token: viewer })).status).toBe(403);

    const operator = await directus.login('operator@example.com', password);
    expect((await api('/items/commands', { method: 'POST', body: command, token: operator })).status).toBe(200);
    expect(
      (await api(`/items/devices/${device.body.data.id}`, { method: 'PATCH', body: '{"name":"x"}', token: operator }))
        .status,
    ).toBe(403);
  });
});
