/**
 * The offline basemap: Natural Earth country outlines (world-atlas, 1:110m) converted once to
 * GeoJSON. Served by the endpoint rather than bundled into the panel, because the Studio loads the
 * app bundle on every page and most pages show no map.
 */
import type { FeatureCollection } from 'geojson';
import { feature } from 'topojson-client';
import type { GeometryCollection, Topology } from 'topojson-specification';
import countries110m from 'world-atlas/countries-110m.json';

let cached: string | null = null;

export function countriesGeoJson(): string {
  if (cached === null) {
    const topo = countries110m as unknown as Topology<{ countries: GeometryCollection<{ name: string }> }>;
    const fc = feature(topo, topo.objects.countries) as FeatureCollection;
    cached = JSON.stringify(fc);
  }
  return cached;
}
