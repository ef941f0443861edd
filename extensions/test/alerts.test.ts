/**
 * Alerts in Directus: a real Directus with the built bundle, a real SMTP server started here
 * (smtp-server), alerts made by the real producer (records on the telemetry stream → processor →
 * history worker with the geofence deriver and alerts hook). Checks the in-app notification (the
 * bell's rows), the e-mails, acknowledging (who may), the map's endpoints (devices with open
 * alerts, geofences as GeoJSON) and the geofence import.
 *
 * Needs `npm run build -w extensions` first (the harness loads extensions/dist).
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { beforeAll, describe, expect, it } from 'vitest';
import { addFence, addRule, driveAlong, type Pipeline, startPipeline } from '../../daemon/test/alerts/support.js';
import { waitFor } from '../../daemon/test/processor/support.js';
import { startDirectus, type TestDirectus, useTestStack } from '../../test/support/index.js';
import { addDevice, restClient, userWithRole } from './support/commands-harness.js';

interface Mail {
  to: string[];
  raw: string;
}

const stack = useTestStack();
let pipeline: Pipeline;
let depot: number;
let directus: TestDirectus;
const mails: Mail[] = [];
let api: ReturnType<typeof restClient>;
let admin: string;
let operator: string;
let viewer: string;

beforeAll(async () => {
  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
  stack.started(smtp, (s) => new Promise<void>((r) => s.close(() => r())));
  const smtpPort = (smtp.server.address() as AddressInfo).port;
  pipeline = stack.started(await startPipeline(stack.db.connection, stack.redis), (p) => p.stop());
  depot = await addFence(stack.db.knex, 'Depot', [25.278, 54.688, 25.29, 54.692]);
  directus = await startDirectus({
    database: stack.db,
    env: {
      EMAIL_TRANSPORT: 'smtp',
      EMAIL_SMTP_HOST: '127.0.0.1',
      EMAIL_SMTP_PORT: smtpPort,
      EMAIL_SMTP_SECURE: false,
      EMAIL_SMTP_IGNORE_TLS: true,
      EMAIL_FROM: 'fleet@example.com',
      FLEET_ALERTS_SEND_CRON: '* * * * * *',
      ALERT_RETRY_BASE_MS: 200,
    },
  });
  stack.started(directus, (d) => d.stop());
  api = restClient(directus.url);
  admin = directus.adminToken;
  operator = await userWithRole(api, admin, directus.login, 'Operator');
  viewer = await userWithRole(api, admin, directus.login, 'Viewer');
}, 300_000);

describe('alerts in Directus', () => {
  it('notifies the rule’s role in the app and by e-mail (real SMTP), once each; operators acknowledge, viewers cannot', async () => {
    const me = await api<{ id: string; email: string }>(operator, 'GET', '/users/me?fields=id,email');
    await api(admin, 'PATCH', `/users/${me.data.id}`, { email_notifications: true });
    const device = await addDevice(stack.db.knex, 'Van 7');
    await addRule(stack.db.knex, {
      name: 'Depot entry',
      type: 'geofence_enter',
      geofence: depot,
      notify_roles: ['Operator'],
      email_to: ['dispatch@example.com'],
    });
    const lons = [25.274, 25.276, 25.2785, 25.2795, 25.281];
    const drive = driveAlong(lons, 54.69, Date.now() - 60_000 - lons.length * 10_000);
    await pipeline.send(device.imei, drive);

    const bell = await waitFor('the operator’s notification', async () => {
      const n = await api<Array<{ subject: string; collection: string; item: string }>>(
        operator,
        'GET',
        '/notifications?fields=subject,collection,item,message',
      );
      return n.data?.length ? n.data : undefined;
    });
    expect(bell).toHaveLength(1);
    expect(bell[0]).toMatchObject({ subject: 'Depot entry: Van 7 entered Depot', collection: 'alerts' });
    await waitFor('two e-mails', async () => mails.length >= 2);
    const recipients = mails.flatMap((m) => m.to).sort();
    expect(recipients).toEqual(['dispatch@example.com', me.data.email.toLowerCase()].sort());
    expect(mails[0]!.raw).toMatch(/Depot entry: Van 7 entered Depot/);
    expect(mails[0]!.raw).toMatch(/X-Fleet-Delivery: \d+/i);

    // The device sending the same records again (a lost ack) adds nothing.
    await pipeline.send(device.imei, drive);
    await pipeline.settled(stack.db.knex);
    const deliveries = await stack.db.knex('alert_deliveries').select('channel', 'status');
    expect(deliveries.map((d) => `${d.channel}:${d.status}`).sort()).toEqual([
      'app:delivered',
      'email:delivered',
      'email:delivered',
    ]);

    const open = await api<Array<{ id: number; state: string; message: string }>>(viewer, 'GET', '/fleet-alerts/open');
    expect(open.status).toBe(200);
    expect(open.data).toHaveLength(1);
    const id = open.data[0]!.id;
    // The map's sources: devices with open alerts, and the geofences, for any signed-in reader.
    const marked = await api<Array<{ device: number; open: number; latest: string }>>(
      viewer,
      'GET',
      '/fleet-alerts/devices',
    );
    expect(marked.data).toEqual([{ device: device.id, open: 1, latest: 'Depot entry: Van 7 entered Depot' }]);
    const fences = await fetch(`${directus.url}/fleet-alerts/geofences`, {
      headers: { authorization: `Bearer ${viewer}` },
    });
    expect(fences.status).toBe(200);
    expect(await fences.json()).toMatchObject({
      type: 'FeatureCollection',
      features: [{ type: 'Feature', id: depot, properties: { name: 'Depot' }, geometry: { type: 'MultiPolygon' } }],
    });
    expect((await api(viewer, 'POST', `/fleet-alerts/${id}/acknowledge`)).status).toBe(403);
    expect((await api(viewer, 'PATCH', `/items/alerts/${id}`, { state: 'resolved' })).status).toBe(403);
    expect((await api(admin, 'PATCH', `/items/alerts/${id}`, { state: 'resolved' })).status).toBe(403);
    const ack = await api<{ state: string; acknowledged_by: string }>(
      operator,
      'POST',
      `/fleet-alerts/${id}/acknowledge`,
    );
    expect(ack.status).toBe(200);
    expect(ack.data).toMatchObject({ state: 'acknowledged', acknowledged_by: me.data.id });
    expect((await api(viewer, 'GET', '/fleet-alerts/devices')).data).toEqual([]);
    expect((await api(admin, 'POST', '/fleet-alerts/999999/acknowledge')).status).toBe(404);

    // Webhook secrets are for administrators only.
    await addRule(stack.db.knex, {
      name: 'hook',
      type: 'crash',
      webhook_url: 'http://127.0.0.1:9/x',
      webhook_secret: 'top',
    });
    const asOperator = await api<Array<{ webhook_secret: string | null }>>(
      operator,
      'GET',
      '/items/alert_rules?fields=webhook_secret&filter[name][_eq]=hook',
    );
    expect(asOperator.data).toEqual([{ webhook_secret: '********' }]);
    const asAdmin = await api<Array<{ webhook_secret: string | null }>>(
      admin,
      'GET',
      '/items/alert_rules?fields=webhook_secret&filter[name][_eq]=hook',
    );
    expect(asAdmin.data).toEqual([{ webhook_secret: 'top' }]);
  });

  it('imports GeoJSON, GPX and KML geofences (admins only); circles and corridors get their area from PostGIS', async () => {
    const geojson = JSON.stringify({
      type: 'FeatureCollection',
      features: [
        {
          type: 'Feature',
          properties: { name: 'Yard', radius_m: 200 },
          geometry: { type: 'Point', coordinates: [25.28, 54.69] },
        },
      ],
    });
    expect((await api(operator, 'POST', '/fleet-alerts/geofences/import', { content: geojson })).status).toBe(403);
    const ok = await api<{ created: number[]; names: string[] }>(admin, 'POST', '/fleet-alerts/geofences/import', {
      content: geojson,
      fileName: 'yard.geojson',
    });
    expect(ok.status).toBe(200);
    expect(ok.data.names).toEqual(['Yard']);
    const gpx = `<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
      <trk><name>Route 9</name><trkseg><trkpt lat="54.6" lon="25.2"/><trkpt lat="54.7" lon="25.3"/></trkseg></trk></gpx>`;
    expect(
      (await api(admin, 'POST', '/fleet-alerts/geofences/import', { content: gpx, fileName: 'r.gpx' })).status,
    ).toBe(200);
    const kml = `<kml xmlns="http://www.opengis.net/kml/2.2"><Placemark><name>Lot</name><Polygon><outerBoundaryIs><LinearRing>
      <coordinates>25,54 25.01,54 25.01,54.01 25,54.01 25,54</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></kml>`;
    expect((await api(admin, 'POST', '/fleet-alerts/geofences/import', { content: kml })).status).toBe(200);

    const rows = await stack.db.knex.raw<{ rows: Array<{ name: string; t: string; m2: number }> }>(
      `SELECT name, GeometryType(area) AS t, ST_Area(area::geography) AS m2 FROM geofences WHERE id <> ? ORDER BY id`,
      [depot],
    );
    expect(rows.rows.map((r) => [r.name, r.t])).toEqual([
      ['Yard', 'MULTIPOLYGON'],
      ['Route 9', 'MULTIPOLYGON'],
      ['Lot', 'MULTIPOLYGON'],
    ]);
    // A 200 m circle: π·200² ≈ 125,664 m² (a 64-gon is within 0.2 %).
    expect(Math.abs(rows.rows[0]!.m2 - Math.PI * 200 * 200) / (Math.PI * 200 * 200)).toBeLessThan(0.005);

    const bad = await api(admin, 'POST', '/fleet-alerts/geofences/import', { content: '<gpx></gpx>' });
    expect(bad.status).toBe(400);
    expect(bad.message).toMatch(/no polygon, point or line/);
    // Through plain REST too: a geofence without a usable shape is a 400 with the reason.
    const shapeless = await api(admin, 'POST', '/items/geofences', { name: 'nothing' });
    expect(shapeless.status).toBe(400);
    expect(shapeless.message).toMatch(/needs an area/);
    const point = { type: 'Point', coordinates: [25, 54] };
    const pointArea = await api(admin, 'POST', '/items/geofences', { name: 'pt', area: point });
    expect(pointArea.status).toBe(400);
    expect(pointArea.message).toMatch(/Polygon or MultiPolygon/);
    const circle = await api<{ id: number }>(admin, 'POST', '/items/geofences', {
      name: 'c',
      center: point,
      radius_m: 50,
    });
    expect(circle.status).toBe(200);
  });
});
