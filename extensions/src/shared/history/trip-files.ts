/** A trip's track as GPX 1.1 and KML 2.2 documents (what navigation and GIS tools import). */

export interface TrackPoint {
  lon: number;
  lat: number;
  /** ISO time. */
  time: string;
  speed: number | null;
}

export interface TripTrack {
  name: string;
  points: TrackPoint[];
}

const xml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

export function tripGpx(t: TripTrack): string {
  const pts = t.points
    .map((p) => `      <trkpt lat="${p.lat}" lon="${p.lon}"><time>${xml(p.time)}</time></trkpt>`)
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="fleet" xmlns="http://www.topografix.com/GPX/1/1">
  <trk>
    <name>${xml(t.name)}</name>
    <trkseg>
${pts}
    </trkseg>
  </trk>
</gpx>
`;
}

export function tripKml(t: TripTrack): string {
  const coords = t.points.map((p) => `${p.lon},${p.lat}`).join(' ');
  return `<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2">
  <Document>
    <name>${xml(t.name)}</name>
    <Placemark>
      <name>${xml(t.name)}</name>
      <TimeSpan><begin>${xml(t.points[0]?.time ?? '')}</begin><end>${xml(t.points.at(-1)?.time ?? '')}</end></TimeSpan>
      <LineString><tessellate>1</tessellate><coordinates>${coords}</coordinates></LineString>
    </Placemark>
  </Document>
</kml>
`;
}
