import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CORRIDOR_WIDTH_M,
  DEFAULT_RADIUS_M,
  detectFormat,
  GeofenceImportError,
  geofenceShapeProblem,
  parseGeofenceFile,
} from './import';

const square = [
  [25.0, 54.0],
  [25.01, 54.0],
  [25.01, 54.01],
  [25.0, 54.01],
  [25.0, 54.0],
];

describe('geofence import', () => {
  it('GeoJSON: polygons become areas, points circles, lines corridors, with names, colours and limits', () => {
    const drafts = parseGeofenceFile(
      JSON.stringify({
        type: 'FeatureCollection',
        features: [
          {
            type: 'Feature',
            properties: { name: 'Depot', color: '#00FF00', speed_limit: 20 },
            geometry: { type: 'Polygon', coordinates: [square] },
          },
          {
            type: 'Feature',
            properties: { name: 'Client', radius_m: 250 },
            geometry: { type: 'Point', coordinates: [25.1, 54.1, 120] },
          },
          {
            type: 'Feature',
            properties: {},
            geometry: {
              type: 'LineString',
              coordinates: [
                [25, 54],
                [25.2, 54.1],
              ],
            },
          },
        ],
      }),
      { fileName: 'sites.geojson' },
    );
    expect(drafts).toEqual([
      {
        name: 'Depot',
        active: true,
        color: '#00ff00',
        speed_limit: 20,
        area: { type: 'Polygon', coordinates: [square] },
      },
      { name: 'Client', active: true, center: { type: 'Point', coordinates: [25.1, 54.1] }, radius_m: 250 },
      {
        name: 'sites 3',
        active: true,
        corridor: {
          type: 'LineString',
          coordinates: [
            [25, 54],
            [25.2, 54.1],
          ],
        },
        width_m: DEFAULT_CORRIDOR_WIDTH_M,
      },
    ]);
  });

  it('KML placemarks and GPX tracks/waypoints', () => {
    const kmlText = `<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>
      <Placemark><name>Yard</name><Polygon><outerBoundaryIs><LinearRing><coordinates>
        25,54 25.01,54 25.01,54.01 25,54.01 25,54
      </coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>`;
    const [yard] = parseGeofenceFile(kmlText);
    expect(yard).toMatchObject({ name: 'Yard', area: { type: 'Polygon', coordinates: [square] } });

    const gpxText = `<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">
      <wpt lat="54.2" lon="25.3"><name>Shop</name></wpt>
      <trk><name>Route 9</name><trkseg><trkpt lat="54" lon="25"/><trkpt lat="54.1" lon="25.1"/></trkseg></trk></gpx>`;
    const drafts = parseGeofenceFile(gpxText, { fileName: 'day.gpx' });
    // togeojson lists tracks before waypoints.
    expect(drafts).toEqual([
      {
        name: 'Route 9',
        active: true,
        corridor: {
          type: 'LineString',
          coordinates: [
            [25, 54],
            [25.1, 54.1],
          ],
        },
        width_m: DEFAULT_CORRIDOR_WIDTH_M,
      },
      { name: 'Shop', active: true, center: { type: 'Point', coordinates: [25.3, 54.2] }, radius_m: DEFAULT_RADIUS_M },
    ]);
  });

  it('bad input is a clear GeofenceImportError', () => {
    expect(() => parseGeofenceFile('')).toThrow(GeofenceImportError);
    expect(() => parseGeofenceFile('hello')).toThrow(/Unknown file format/);
    expect(() => parseGeofenceFile('{"type":')).toThrow(/Not valid JSON/);
    expect(() =>
      parseGeofenceFile(
        JSON.stringify({
          type: 'Polygon',
          coordinates: [
            [
              [0, 0],
              [1, 1],
              [0, 0],
            ],
          ],
        }),
      ),
    ).toThrow(/at least 4 positions/);
    expect(() => parseGeofenceFile(JSON.stringify({ type: 'Point', coordinates: [200, 0] }))).toThrow(/out of range/);
    expect(() => parseGeofenceFile('<kml><Document></Document></kml>')).toThrow(/no polygon, point or line/);
    expect(detectFormat('  <?xml version="1.0"?><gpx>')).toBe('gpx');
  });
});

describe('geofenceShapeProblem', () => {
  const point = { type: 'Point', coordinates: [25, 54] };
  it('accepts the three forms and refuses shapeless or wrongly typed geofences', () => {
    expect(geofenceShapeProblem({ name: 'a', area: { type: 'Polygon', coordinates: [square] } }, true)).toBeNull();
    expect(geofenceShapeProblem({ name: 'c', center: point, radius_m: 10 }, true)).toBeNull();
    expect(
      geofenceShapeProblem({ name: 'r', corridor: { type: 'LineString', coordinates: [] }, width_m: 5 }, true),
    ).toBeNull();
    expect(geofenceShapeProblem({ name: 'x' }, true)).toMatch(/needs an area/);
    expect(geofenceShapeProblem({ name: 'x' }, false)).toBeNull();
    expect(geofenceShapeProblem({ area: point }, false)).toMatch(/Polygon or MultiPolygon/);
    expect(geofenceShapeProblem({ center: point, radius_m: 0 }, true)).toMatch(/radius_m must be positive \(metres\)/);
  });
});
