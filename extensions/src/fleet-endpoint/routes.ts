/**
 * Routes of the `fleet` endpoint. Each handler only checks access, parses the request and calls
 * the plain functions in shared/telematics, which hold the SQL and Redis logic (and its tests).
 *
 * Access: data routes need a logged-in user who may read `devices`. The check goes through
 * Directus's ItemsService with the caller's accountability, so whatever policy the admin set
 * applies; Core tier only has whole-collection permissions, so "may read devices" means "may see
 * every device", which is what the raw PostGIS queries then return.
 */
import { readFile } from 'node:fs/promises';
import { ForbiddenError, InvalidQueryError, ServiceUnavailableError } from '@directus/errors';
import type { Accountability, SchemaOverview } from '@directus/types';
import type { NextFunction, Request, Response, Router } from 'express';
import type { Knex } from 'knex';
import { commandClient, currentRuntime } from '../shared/commands-service';
import { pipelineHealth } from '../shared/telematics/health.js';
import {
  fleetFingerprint,
  latestPositionsGeoJson,
  PositionsQueryError,
  parsePositionsQuery,
  positionsEtag,
} from '../shared/telematics/positions.js';
import { deviceTrack, parseTrackQuery, TrackQueryError, TrackTimeoutError } from '../shared/telematics/track.js';
import { countriesGeoJson } from './basemap.js';
import { sendBody } from './compress.js';

type DirectusRequest = Request & { accountability?: Accountability | null; schema?: SchemaOverview };
/** The part of Directus's endpoint context these routes use (also what a test has to provide). */
export interface FleetEndpointContext {
  services: {
    ItemsService: new (
      collection: string,
      options: { accountability: Accountability; schema: SchemaOverview; knex: Knex },
    ) => {
      readByQuery(query: { fields: string[]; limit: number }): Promise<unknown>;
      readOne(key: string, query: { fields: string[] }): Promise<unknown>;
    };
  };
  database: Knex;
}
type Handler = (req: DirectusRequest, res: Response) => Promise<unknown>;

/** Express 4 does not catch rejected promises: forward them to Directus's error handler. */
const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => {
  fn(req as DirectusRequest, res).catch(next);
};

/** The worker file sits next to api.js in dist/ (copied there by extension.config.js). */
const WORKER_FILE = new URL('./maplibre-gl-worker.mjs', import.meta.url);

export function registerFleetRoutes(router: Router, ctx: FleetEndpointContext): void {
  const { services, database } = ctx;

  async function assertCanReadDevices(req: DirectusRequest, device?: string): Promise<void> {
    const accountability = req.accountability;
    if (!accountability?.user) throw new ForbiddenError();
    if (accountability.admin) return;
    const items = new services.ItemsService('devices', { accountability, schema: req.schema!, knex: database });
    // Throws ForbiddenError when the caller may not read devices (or this device).
    if (device === undefined) await items.readByQuery({ fields: ['id'], limit: 1 });
    else await items.readOne(device, { fields: ['id'] });
  }

  /** Runs a query parser; a query it refuses is a 400 with its reason. */
  const parseQuery = <T>(parse: () => T): T => {
    try {
      return parse();
    } catch (err) {
      if (err instanceof PositionsQueryError || err instanceof TrackQueryError) {
        throw new InvalidQueryError({ reason: err.message });
      }
      throw err;
    }
  };

  // Public: a static library file, requested by the browser's module Worker.
  let workerSource: Buffer | null = null;
  router.get(
    '/maplibre-gl-worker.mjs',
    wrap(async (_req, res) => {
      workerSource ??= await readFile(WORKER_FILE);
      res.set('Content-Type', 'text/javascript; charset=utf-8');
      res.set('Cache-Control', 'public, max-age=86400');
      res.send(workerSource);
    }),
  );

  // Public: Natural Earth outlines, the default basemap that needs no internet.
  router.get(
    '/basemap/countries.geojson',
    wrap(async (req, res) => {
      res.set('Cache-Control', 'public, max-age=86400');
      await sendBody(req, res, countriesGeoJson(), 'application/geo+json');
    }),
  );

  router.get(
    '/positions',
    wrap(async (req, res) => {
      await assertCanReadDevices(req);
      const opts = parseQuery(() => parsePositionsQuery(req.query as Record<string, unknown>));
      const fp = await fleetFingerprint(database);
      const etag = positionsEtag(fp, opts);
      res.set('ETag', etag);
      res.set('Cache-Control', 'private, no-cache');
      // The cursor for the next delta poll travels in a header so the body stays plain GeoJSON.
      res.set('X-Fleet-Cursor', String(fp.cursorMs));
      res.set('X-Fleet-Devices', String(fp.devices));
      if (req.headers['if-none-match'] === etag) return res.status(304).end();
      await sendBody(req, res, await latestPositionsGeoJson(database, opts), 'application/geo+json');
    }),
  );

  router.get(
    '/devices/:id/track',
    wrap(async (req, res) => {
      // Authorise before parsing: a caller who may not read devices learns nothing from errors.
      await assertCanReadDevices(req);
      const query = parseQuery(() => parseTrackQuery(String(req.params.id), req.query as Record<string, unknown>));
      await assertCanReadDevices(req, String(query.device));
      res.set('Cache-Control', 'private, no-cache');
      let track: Awaited<ReturnType<typeof deviceTrack>>;
      try {
        track = await deviceTrack(database, query);
      } catch (err) {
        if (err instanceof TrackTimeoutError)
          throw new ServiceUnavailableError({ service: 'database', reason: err.message });
        throw err;
      }
      await sendBody(req, res, JSON.stringify(track), 'application/json');
    }),
  );

  router.get(
    '/health',
    wrap(async (req, res) => {
      await assertCanReadDevices(req);
      // The extension's one Redis runtime (installed by the commands hook, closed with Directus).
      const runtime = currentRuntime();
      if (!runtime?.config.redis) {
        throw new ServiceUnavailableError({ service: 'redis', reason: 'REDIS is not configured' });
      }
      try {
        res.set('Cache-Control', 'no-store');
        res.json(await pipelineHealth(commandClient(runtime), runtime.keys));
      } catch (err) {
        throw new ServiceUnavailableError({ service: 'redis', reason: (err as Error).message });
      }
    }),
  );
}
