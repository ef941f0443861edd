/**
 * The offline basemap: Natural Earth country outlines (world-atlas, 1:110m) converted once to
 * GeoJSON. Served by the endpoint rather than bundled into the panel, because the Studio loads the
 * app bundle on every page and most pages show no map.
 */
import type { Feature, FeatureCollection, MultiPolygon, Polygon, Position } from 'geojson';
import { feature } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';
import countries110m from 'world-atlas/countries-110m.json';

/** Antarctica's ring runs around the pole; on a flat map it would smear across the whole bottom. */
const DROPPED = new Set(['010']);

/**
 * world-atlas is made for spherical rendering: rings crossing the antimeridian (Russia, Fiji) jump
 * from +180 to -180, which a flat map draws as stripes across the world. Unwrapping makes every
 * step shorter than 180° (longitudes may exceed 180, which maplibre draws on the next world copy).
 */
export function unwrapRing(ring: Position[]): Position[] {
  const out: Position[] = [];
  let shift = 0;
  for (let i = 0; i < ring.length; i++) {
    const [lon, lat] = ring[i] as [number, number];
    if (i > 0) {
      const prev = (ring[i - 1] as [number, number])[0];
      if (lon - prev > 180) shift -= 360;
      else if (prev - lon > 180) shift += 360;
    }
    out.push([lon + shift, lat]);
  }
  return out;
}

let cached: string | null = null;

export function countriesGeoJson(): string {
  if (cached === null) {
    const topo = countries110m as unknown as Topology<{ countries: GeometryCollection<{ name: string }> }>;
    const fc = feature(topo, topo.objects.countries) as FeatureCollection<Polygon | MultiPolygon>;
    const features: Feature[] = [];
    for (const f of fc.features) {
      if (DROPPED.has(String(f.id))) continue;
      const g = f.geometry;
      const geometry: Polygon | MultiPolygon =
        g.type === 'Polygon'
          ? { type: 'Polygon', coordinates: g.coordinates.map(unwrapRing) }
          : { type: 'MultiPolygon', coordinates: g.coordinates.map((p) => p.map(unwrapRing)) };
      features.push({ type: 'Feature', id: f.id, properties: { name: f.properties?.name ?? '' }, geometry });
    }
    cached = JSON.stringify({ type: 'FeatureCollection', features });
  }
  return cached;
}
