/**
 * /fleet-alerts: what the Alerts panel needs.
 *
 * - GET  /fleet-alerts/open?limit=50: open and acknowledged-but-unresolved alerts, newest first,
 *   read with the caller's permissions (so "may read alerts" decides);
 * - GET  /fleet-alerts/devices?limit=500: devices with open (unacknowledged) alerts, newest first,
 *   with the count and the newest message (the fleet map's rings);
 * - GET  /fleet-alerts/geofences: active geofences as a GeoJSON FeatureCollection (the map's layer);
 *   both read with the caller's permissions;
 * - POST /fleet-alerts/:id/acknowledge: Administrators and the roles in FLEET_ALERT_ACK_ROLES
 *   (default Operator) only — enforced here because the Core tier has no field-level permissions,
 *   and users cannot edit alerts directly (see the alerts hook);
 * - POST /fleet-alerts/geofences/import {content, fileName?, format?}: GeoJSON / GPX / KML →
 *   geofences, created with the caller's permissions (Administrators by default).
 */
import { defineEndpoint } from '@directus/extensions-sdk';
import type { Accountability, SchemaOverview } from '@directus/types';
import type { NextFunction, Request, Response } from 'express';
import type { Knex } from 'knex';
import { AlertsForbiddenError, AlertsInvalidError, AlertsNotFoundError } from '../alerts-hook/lib/errors';
import { senderOf } from '../shared/commands-service';
import { type GeofenceFormat, GeofenceImportError, parseGeofenceFile } from '../shared/geofences/import';

type DirectusRequest = Request & { accountability?: Accountability | null; schema?: SchemaOverview };

interface ItemsService {
  readByQuery(query: Record<string, unknown>): Promise<Array<Record<string, unknown>>>;
  readOne(key: string, query: Record<string, unknown>): Promise<Record<string, unknown>>;
  updateOne(key: string, data: Record<string, unknown>): Promise<unknown>;
  createMany(data: Record<string, unknown>[]): Promise<Array<string | number>>;
}
interface Ctx {
  services: {
    ItemsService: new (
      collection: string,
      opts: { schema: SchemaOverview; knex: Knex; accountability?: Accountability | null },
    ) => ItemsService;
  };
  database: Knex;
  env: Record<string, unknown>;
}

/** One row of `GET /open`: the fields of ALERT_LIST_FIELDS the Alerts panel reads. */
export interface OpenAlert {
  id: number;
  message: string;
  event_type: string;
  event_time: string;
  state: 'open' | 'acknowledged' | 'resolved';
  stale: boolean;
}

/** One row of `GET /devices`: a device with open alerts, for the fleet map's rings. */
export interface AlertedDevice {
  device: number | string;
  /** Open alerts of the device. */
  open: number;
  /** Message of the newest one. */
  latest: string;
}

export const ALERT_LIST_FIELDS = [
  'id',
  'message',
  'event_type',
  'event_time',
  'event_key',
  'state',
  'stale',
  'created_at',
  'acknowledged_at',
  'location',
  'device.id',
  'device.name',
  'device.imei',
  'rule.id',
  'rule.name',
];

const FORMATS = new Set<GeofenceFormat>(['geojson', 'gpx', 'kml']);

export default defineEndpoint({
  id: 'fleet-alerts',
  handler: (router, context) => {
    const ctx = context as unknown as Ctx;
    const ackRoles = String(ctx.env.FLEET_ALERT_ACK_ROLES ?? 'Operator')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);

    const route =
      (fn: (req: DirectusRequest, res: Response) => Promise<void>) =>
      (req: Request, res: Response, next: NextFunction) => {
        fn(req as DirectusRequest, res).catch(next);
      };
    const signedIn = (req: DirectusRequest): Accountability => {
      if (!req.accountability?.user) throw new AlertsForbiddenError({ reason: 'Sign in to use the alerts endpoints.' });
      return req.accountability;
    };
    /** A collection read (or written) with the signed-in caller's permissions. */
    const asCaller = (req: DirectusRequest, collection: string) =>
      new ctx.services.ItemsService(collection, {
        schema: req.schema!,
        knex: ctx.database,
        accountability: signedIn(req),
      });

    /** `?limit=`: a lenient number (missing or unreadable = the default), clamped to 1..max. */
    const limitOf = (req: DirectusRequest, def: number, max: number) =>
      Math.min(max, Math.max(1, Number(req.query.limit ?? def) || def));

    router.get(
      '/open',
      route(async (req, res) => {
        const items = asCaller(req, 'alerts');
        const limit = limitOf(req, 50, 200);
        const data = await items.readByQuery({
          fields: ALERT_LIST_FIELDS,
          filter: { state: { _in: ['open', 'acknowledged'] } },
          sort: ['-event_time', '-id'],
          limit,
        });
        res.json({ data });
      }),
    );

    router.get(
      '/devices',
      route(async (req, res) => {
        const items = asCaller(req, 'alerts');
        const limit = limitOf(req, 500, 1000);
        // The caller must be able to read alerts (whole-collection permissions on the Core tier);
        // the grouping itself is one query.
        await items.readByQuery({ fields: ['id'], limit: 1 });
        const grouped = await ctx.database.raw<{
          rows: Array<{ device: number; open: number; latest: string | null }>;
        }>(
          `SELECT device, count(*)::int AS open, (array_agg(message ORDER BY id DESC))[1] AS latest
             FROM alerts WHERE state = 'open' GROUP BY device ORDER BY max(id) DESC LIMIT ?`,
          [limit],
        );
        const data: AlertedDevice[] = grouped.rows.map((r) => ({
          device: r.device,
          open: r.open,
          latest: r.latest ?? '',
        }));
        res.json({ data });
      }),
    );

    router.get(
      '/geofences',
      route(async (req, res) => {
        const items = asCaller(req, 'geofences');
        const rows = await items.readByQuery({
          fields: ['id', 'name', 'color', 'speed_limit', 'area'],
          filter: { active: { _eq: true } },
          sort: ['id'],
          limit: -1,
        });
        res.json({
          type: 'FeatureCollection',
          features: rows
            .filter((g) => g.area)
            .map((g) => ({
              type: 'Feature',
              id: g.id,
              properties: { id: g.id, name: g.name, color: g.color ?? null, speed_limit: g.speed_limit ?? null },
              geometry: g.area,
            })),
        });
      }),
    );

    router.post(
      '/:id/acknowledge',
      route(async (req, res) => {
        const accountability = signedIn(req);
        const who = await senderOf(accountability, ctx.database);
        if (!who?.admin && !who?.roleNames.some((r) => ackRoles.includes(r))) {
          throw new AlertsForbiddenError({
            reason: `Only Administrators and ${ackRoles.join(', ')} may acknowledge alerts.`,
          });
        }
        const id = String(req.params.id);
        if (!/^\d+$/.test(id)) throw new AlertsInvalidError({ reason: 'An alert id is a number.' });
        const system = new ctx.services.ItemsService('alerts', { schema: req.schema!, knex: ctx.database });
        const found = await system.readByQuery({ fields: ['id', 'state'], filter: { id: { _eq: id } }, limit: 1 });
        const alert = found[0];
        if (!alert) throw new AlertsNotFoundError({ reason: `No alert ${id}.` });
        if (alert.state === 'open') {
          await system.updateOne(id, {
            state: 'acknowledged',
            acknowledged_by: accountability.user,
            acknowledged_at: new Date().toISOString(),
          });
        }
        const data = await system.readOne(id, { fields: ['id', 'state', 'acknowledged_by', 'acknowledged_at'] });
        res.json({ data });
      }),
    );

    router.post(
      '/geofences/import',
      route(async (req, res) => {
        signedIn(req); // authorise before parsing anything
        const body = (req.body ?? {}) as { content?: unknown; fileName?: unknown; format?: unknown };
        if (typeof body.content !== 'string')
          throw new AlertsInvalidError({ reason: 'Send {"content": "<file text>"}.' });
        const format = typeof body.format === 'string' ? (body.format.toLowerCase() as GeofenceFormat) : undefined;
        if (format !== undefined && !FORMATS.has(format)) {
          throw new AlertsInvalidError({ reason: 'format is one of geojson, gpx, kml.' });
        }
        let drafts: ReturnType<typeof parseGeofenceFile>;
        try {
          drafts = parseGeofenceFile(body.content, {
            format,
            fileName: typeof body.fileName === 'string' ? body.fileName : undefined,
          });
        } catch (err) {
          if (err instanceof GeofenceImportError) throw new AlertsInvalidError({ reason: err.message });
          throw err;
        }
        const items = asCaller(req, 'geofences');
        try {
          const ids = await items.createMany(drafts as unknown as Record<string, unknown>[]);
          res.json({ data: { created: ids, names: drafts.map((d) => d.name) } });
        } catch (err) {
          // The database's shape check (directus/sql/after-schema.sql) refuses what PostGIS cannot use.
          const e = err as { code?: string; message?: string };
          if (e.code === '22023') throw new AlertsInvalidError({ reason: e.message ?? 'invalid geometry' });
          throw err;
        }
      }),
    );
  },
});
