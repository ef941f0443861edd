import { describe, expect, it } from 'vitest';
import { countriesGeoJson, unwrapRing } from './basemap.js';

describe('offline basemap', () => {
  it('unwraps rings that cross the antimeridian so no edge spans the world', () => {
    expect(
      unwrapRing([
        [179, 1],
        [-179, 1],
        [-179, 2],
        [179, 2],
        [179, 1],
      ]),
    ).toEqual([
      [179, 1],
      [181, 1],
      [181, 2],
      [179, 2],
      [179, 1],
    ]);
    expect(
      unwrapRing([
        [10, 1],
        [11, 2],
      ]),
    ).toEqual([
      [10, 1],
      [11, 2],
    ]);
  });

  it('ships every country but Antarctica, with no edge longer than 180 degrees', () => {
    const fc = JSON.parse(countriesGeoJson()) as {
      features: { id: string; properties: { name: string }; geometry: { type: string; coordinates: unknown } }[];
    };
    expect(fc.features.length).toBeGreaterThan(170);
    expect(fc.features.some((f) => f.properties.name === 'Russia')).toBe(true);
    expect(fc.features.some((f) => f.id === '010')).toBe(false);
    const rings = fc.features.flatMap((f) =>
      f.geometry.type === 'Polygon'
        ? (f.geometry.coordinates as number[][][])
        : (f.geometry.coordinates as number[][][][]).flat(),
    );
    for (const r of rings) {
      for (let i = 1; i < r.length; i++) expect(Math.abs(r[i]![0]! - r[i - 1]![0]!)).toBeLessThan(180);
    }
  });
});
