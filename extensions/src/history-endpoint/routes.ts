/**
 * Routes of `fleet-history`. Each handler checks access, parses the request and calls the pure
 * report functions in ../shared/history; the XLSX file is written with exceljs.
 *
 *   GET /fleet-history/report?kind=trips|stops|events|days|visits&devices=1,2|all&from=&to=&limit=&tz=
 *       → { kind, timeZone, columns, rows, totals, truncated }   (times written in `tz`, default UTC;
 *         visits = geofence_enter/exit pairs per device and geofence, see ../shared/history/report.ts)
 *   GET /fleet-history/report.csv | report.xlsx (same query) → the same rows as a file
 *   GET /fleet-history/trips/:id.gpx | :id.kml → the trip's track (good fixes between its ends)
 */
import { ForbiddenError, InvalidQueryError } from '@directus/errors';
import type { Accountability, SchemaOverview } from '@directus/types';
import ExcelJS from 'exceljs';
import type { NextFunction, Request, Response, Router } from 'express';
import type { Knex } from 'knex';
import {
  buildReport,
  type Item,
  itemsQuery,
  parseReportQuery,
  REPORTS,
  type Report,
  ReportQueryError,
  reportCsv,
} from '../shared/history/report.js';
import { type TrackPoint, tripGpx, tripKml } from '../shared/history/trip-files.js';

type DirectusRequest = Request & { accountability?: Accountability | null; schema?: SchemaOverview };
interface ItemsServiceLike {
  readByQuery(query: Record<string, unknown>): Promise<Item[]>;
  readOne(key: string | number, query: Record<string, unknown>): Promise<Item>;
}
export interface HistoryEndpointContext {
  services: {
    ItemsService: new (
      collection: string,
      options: { accountability: Accountability; schema: SchemaOverview; knex: Knex },
    ) => ItemsServiceLike;
  };
  database: Knex;
}
type Handler = (req: DirectusRequest, res: Response) => Promise<unknown>;

const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => {
  fn(req as DirectusRequest, res).catch(next);
};

function sendFile(res: Response, type: string, filename: string, body: string | Buffer): void {
  res.set('content-type', type).set('content-disposition', `attachment; filename="${filename}"`).send(body);
}

const stamp = () => new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');

export async function reportXlsx(report: Report): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet(report.kind);
  ws.columns = report.columns.map((c) => ({ header: c.label, key: c.key, width: Math.max(12, c.label.length + 2) }));
  for (const r of report.rows) ws.addRow(Object.fromEntries(report.columns.map((c) => [c.key, r[c.key] ?? null])));
  ws.addRow(Object.fromEntries(report.columns.map((c) => [c.key, report.totals[c.key] ?? null]))).font = { bold: true };
  ws.getRow(1).font = { bold: true };
  return Buffer.from(await wb.xlsx.writeBuffer());
}

export function registerHistoryRoutes(router: Router, ctx: HistoryEndpointContext): void {
  const { services, database } = ctx;
  const items = (req: DirectusRequest, collection: string) => {
    const accountability = req.accountability;
    if (!accountability?.user) throw new ForbiddenError();
    return new services.ItemsService(collection, { accountability, schema: req.schema!, knex: database });
  };
  const badQuery = (err: unknown): never => {
    if (err instanceof ReportQueryError) throw new InvalidQueryError({ reason: err.message });
    throw err;
  };

  async function report(req: DirectusRequest): Promise<Report> {
    let q: ReturnType<typeof parseReportQuery>;
    try {
      q = parseReportQuery(req.query as Record<string, unknown>);
    } catch (err) {
      return badQuery(err);
    }
    const found = await items(req, REPORTS[q.kind].collection).readByQuery(itemsQuery(q));
    return buildReport(q, found);
  }

  router.get(
    '/report',
    wrap(async (req, res) => res.json(await report(req))),
  );
  const FILES = {
    csv: { type: 'text/csv; charset=utf-8', body: async (r: Report) => reportCsv(r) },
    xlsx: { type: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', body: reportXlsx },
  } as const;
  for (const [ext, file] of Object.entries(FILES)) {
    router.get(
      `/report.${ext}`,
      wrap(async (req, res) => {
        const r = await report(req);
        sendFile(res, file.type, `${r.kind}-${stamp()}.${ext}`, await file.body(r));
      }),
    );
  }
  router.get(
    /^\/trips\/(\d+)\.(gpx|kml)$/,
    wrap(async (req, res) => {
      const [id, format] = [req.params[0]!, req.params[1]!];
      const trip = await items(req, 'trips').readOne(id, {
        fields: ['id', 'device.id', 'device.name', 'device.imei', 'start_time', 'end_time'],
      });
      // Positions are read in bulk below: first make sure the caller may read them at all.
      await items(req, 'positions').readByQuery({ fields: ['id'], limit: 1 });
      const rows = await database.raw<{ rows: { lon: number; lat: number; t: Date; speed: number | null }[] }>(
        `SELECT ST_X(location) AS lon, ST_Y(location) AS lat, fix_time AS t, speed FROM positions
          WHERE device = ? AND fix_time BETWEEN ? AND ? AND flags IS NULL ORDER BY fix_time, event_io_id`,
        [trip.device.id, trip.start_time, trip.end_time],
      );
      const points: TrackPoint[] = rows.rows.map((r) => ({
        lon: r.lon,
        lat: r.lat,
        time: new Date(r.t).toISOString(),
        speed: r.speed,
      }));
      const name = `${trip.device.name ?? trip.device.imei} ${new Date(trip.start_time).toISOString()}`;
      const body = format === 'gpx' ? tripGpx({ name, points }) : tripKml({ name, points });
      const type = format === 'gpx' ? 'application/gpx+xml' : 'application/vnd.google-earth.kml+xml';
      sendFile(res, type, `trip-${trip.id}.${format}`, body);
    }),
  );
}
