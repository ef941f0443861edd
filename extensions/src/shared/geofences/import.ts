/**
 * Geofence files → rows of `geofences`. Pure (no database): GeoJSON as is, GPX and KML through
 * @tmcw/togeojson on an @xmldom DOM.
 *
 * - Polygon / MultiPolygon → `area`.
 * - Point → a circle (`center` + `radius_m` from the feature's `radius_m` / `radius`, else
 *   DEFAULT_RADIUS_M): GPX waypoints, KML placemarks with a point.
 * - LineString → a corridor (`corridor` + `width_m` from `width_m` / `width`, else
 *   DEFAULT_CORRIDOR_WIDTH_M): GPX tracks and routes, KML lines. A MultiLineString (a GPX track with
 *   several segments) becomes one corridor per segment.
 * - `name` from the feature's `name` / `title`, else "<file> <n>"; `color` from `color` / `fill` /
 *   `stroke` when it is a #rgb or #rrggbb colour; `speed_limit` from `speed_limit`.
 * The database turns circles and corridors into `area` (directus/sql/after-schema.sql).
 */
import { gpx, kml } from '@tmcw/togeojson';
import { DOMParser } from '@xmldom/xmldom';
import type { Feature, Geometry, LineString, MultiPolygon, Point, Polygon, Position } from 'geojson';

export const DEFAULT_RADIUS_M = 100;
export const DEFAULT_CORRIDOR_WIDTH_M = 50;
export const MAX_IMPORT_FEATURES = 1000;

export type GeofenceFormat = 'geojson' | 'gpx' | 'kml';

export interface GeofenceDraft {
  name: string;
  area?: Polygon | MultiPolygon;
  center?: Point;
  radius_m?: number;
  corridor?: LineString;
  width_m?: number;
  color?: string;
  speed_limit?: number;
  active: boolean;
}

export class GeofenceImportError extends Error {
  override name = 'GeofenceImportError';
}

/** The format named by a file name, else guessed from the first non-blank characters. */
export function detectFormat(content: string, fileName?: string): GeofenceFormat {
  const ext = fileName?.toLowerCase().match(/\.([a-z]+)$/)?.[1];
  if (ext === 'gpx' || ext === 'kml') return ext;
  if (ext === 'geojson' || ext === 'json') return 'geojson';
  const head = content.trimStart().slice(0, 400).toLowerCase();
  if (head.startsWith('{') || head.startsWith('[')) return 'geojson';
  if (head.includes('<gpx')) return 'gpx';
  if (head.includes('<kml')) return 'kml';
  throw new GeofenceImportError('Unknown file format: expected GeoJSON, GPX or KML.');
}

function xml(content: string): Document {
  const errors: string[] = [];
  const doc = new DOMParser({
    errorHandler: { error: (m: string) => errors.push(m), fatalError: (m: string) => errors.push(m) },
  }).parseFromString(content, 'text/xml');
  if (errors.length > 0 || !doc?.documentElement)
    throw new GeofenceImportError(`Not valid XML: ${errors[0] ?? 'empty'}`);
  return doc as unknown as Document;
}

function featuresOf(content: string, format: GeofenceFormat): Feature<Geometry | null>[] {
  if (format === 'gpx') return gpx(xml(content)).features;
  if (format === 'kml') return kml(xml(content)).features;
  let json: unknown;
  try {
    json = JSON.parse(content);
  } catch (err) {
    throw new GeofenceImportError(`Not valid JSON: ${(err as Error).message}`);
  }
  const o = json as { type?: string; features?: unknown; geometry?: unknown };
  if (o?.type === 'FeatureCollection' && Array.isArray(o.features)) return o.features as Feature<Geometry | null>[];
  if (o?.type === 'Feature') return [o as Feature<Geometry | null>];
  if (typeof o?.type === 'string') return [{ type: 'Feature', geometry: o as Geometry, properties: {} }];
  throw new GeofenceImportError('GeoJSON must be a FeatureCollection, a Feature or a geometry.');
}

const validPosition = (p: Position) =>
  Array.isArray(p) && p.length >= 2 && Math.abs(Number(p[0])) <= 180 && Math.abs(Number(p[1])) <= 90;
const twoD = (p: Position): Position => [Number(p[0]), Number(p[1])];

function ring(r: Position[], where: string): Position[] {
  if (!Array.isArray(r) || r.length < 4 || !r.every(validPosition)) {
    throw new GeofenceImportError(
      `${where}: a polygon ring needs at least 4 positions with longitude/latitude in range.`,
    );
  }
  return r.map(twoD);
}

function positiveNumber(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

function colorOf(props: Record<string, unknown>): string | undefined {
  for (const key of ['color', 'fill', 'stroke']) {
    const v = props[key];
    if (typeof v === 'string' && /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(v)) return v.toLowerCase();
  }
  return undefined;
}

/** Parses a geofence file into drafts for `geofences`; throws GeofenceImportError on bad input. */
export function parseGeofenceFile(
  content: string,
  options: { format?: GeofenceFormat; fileName?: string } = {},
): GeofenceDraft[] {
  if (typeof content !== 'string' || content.trim() === '') throw new GeofenceImportError('The file is empty.');
  const format = options.format ?? detectFormat(content, options.fileName);
  const base = (options.fileName ?? 'Imported').replace(/\.[a-z]+$/i, '');
  const drafts: GeofenceDraft[] = [];
  const features = featuresOf(content, format);
  features.forEach((f, i) => {
    const props = (f.properties ?? {}) as Record<string, unknown>;
    const named = [props.name, props.title].find((v) => typeof v === 'string' && v.trim() !== '') as string | undefined;
    const name = (named ?? `${base} ${i + 1}`).trim().slice(0, 255);
    const common = {
      name,
      active: true,
      ...(colorOf(props) ? { color: colorOf(props) } : {}),
      ...(positiveNumber(props.speed_limit) ? { speed_limit: Math.round(positiveNumber(props.speed_limit)!) } : {}),
    };
    const g = f.geometry;
    const where = `Feature ${i + 1} (${name})`;
    if (!g) return;
    switch (g.type) {
      case 'Polygon':
        drafts.push({ ...common, area: { type: 'Polygon', coordinates: g.coordinates.map((r) => ring(r, where)) } });
        break;
      case 'MultiPolygon':
        drafts.push({
          ...common,
          area: { type: 'MultiPolygon', coordinates: g.coordinates.map((p) => p.map((r) => ring(r, where))) },
        });
        break;
      case 'Point':
        if (!validPosition(g.coordinates)) throw new GeofenceImportError(`${where}: longitude/latitude out of range.`);
        drafts.push({
          ...common,
          center: { type: 'Point', coordinates: twoD(g.coordinates) },
          radius_m: positiveNumber(props.radius_m) ?? positiveNumber(props.radius) ?? DEFAULT_RADIUS_M,
        });
        break;
      case 'LineString':
      case 'MultiLineString': {
        const lines = g.type === 'LineString' ? [g.coordinates] : g.coordinates;
        const width = positiveNumber(props.width_m) ?? positiveNumber(props.width) ?? DEFAULT_CORRIDOR_WIDTH_M;
        lines.forEach((line, j) => {
          if (line.length < 2 || !line.every(validPosition)) {
            throw new GeofenceImportError(
              `${where}: a line needs at least 2 positions with longitude/latitude in range.`,
            );
          }
          drafts.push({
            ...common,
            name: lines.length > 1 ? `${name} ${j + 1}` : name,
            corridor: { type: 'LineString', coordinates: line.map(twoD) },
            width_m: width,
          });
        });
        break;
      }
      default:
        throw new GeofenceImportError(`${where}: ${g.type} cannot be a geofence (use polygons, points or lines).`);
    }
  });
  if (drafts.length === 0) throw new GeofenceImportError('The file holds no polygon, point or line.');
  if (drafts.length > MAX_IMPORT_FEATURES) {
    throw new GeofenceImportError(`At most ${MAX_IMPORT_FEATURES} geofences per file (this one has ${drafts.length}).`);
  }
  return drafts;
}

/**
 * Why a geofence payload cannot be stored, or null. Checked before Directus writes (a hook filter),
 * so users get a 400 with the reason; the database trigger enforces the same for every writer.
 * `creating`: the payload is a whole new row (an update may leave the shape as it is).
 */
export function geofenceShapeProblem(payload: Record<string, unknown>, creating: boolean): string | null {
  const given = (k: string) => payload[k] !== undefined && payload[k] !== null;
  for (const k of ['radius_m', 'width_m']) {
    if (given(k) && !(Number(payload[k]) > 0)) return `${k} must be positive (metres).`;
  }
  const area = payload.area as { type?: unknown } | null | undefined;
  if (given('area') && area?.type !== 'Polygon' && area?.type !== 'MultiPolygon') {
    return `area must be a Polygon or MultiPolygon (got ${String(area?.type ?? typeof area)}); use center + radius_m for a circle, corridor + width_m for a route.`;
  }
  const shaped = given('area') || (given('center') && given('radius_m')) || (given('corridor') && given('width_m'));
  if (creating && !shaped) {
    return 'A geofence needs an area (Polygon or MultiPolygon), a center with radius_m, or a corridor with width_m.';
  }
  return null;
}
