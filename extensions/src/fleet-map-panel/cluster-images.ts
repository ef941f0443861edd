/**
 * Cluster counts as images: a symbol layer with only an icon needs no glyph files (which offline
 * installs lack), and maplibre draws it with the circles on the GPU. The map asks for each label it
 * has not seen yet (`styleimagemissing`); supercluster abbreviates counts (`1.2k`), so there are at
 * most a few thousand distinct labels.
 */
import type { Map as MaplibreMap } from 'maplibre-gl';

export const CLUSTER_IMAGE_PREFIX = 'fleet-count-';

const PIXEL_RATIO = 2;

/** White bold text with a dark halo, drawn with the browser's own fonts on a canvas. */
export function countImage(label: string): ImageData | null {
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d');
  if (!ctx) return null;
  const font = `700 ${11 * PIXEL_RATIO}px system-ui, sans-serif`;
  ctx.font = font;
  const width = Math.ceil(ctx.measureText(label).width) + 4 * PIXEL_RATIO;
  const height = 16 * PIXEL_RATIO;
  canvas.width = width;
  canvas.height = height;
  ctx.font = font;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.lineWidth = 3 * PIXEL_RATIO;
  ctx.strokeStyle = 'rgba(0,0,0,0.45)';
  ctx.lineJoin = 'round';
  ctx.strokeText(label, width / 2, height / 2);
  ctx.fillStyle = '#ffffff';
  ctx.fillText(label, width / 2, height / 2);
  return ctx.getImageData(0, 0, width, height);
}

/** Supplies count images as the map asks for them. */
export function provideClusterImages(map: MaplibreMap): void {
  map.on('styleimagemissing', (e: { id: string }) => {
    if (!e.id.startsWith(CLUSTER_IMAGE_PREFIX) || map.hasImage(e.id)) return;
    const image = countImage(e.id.slice(CLUSTER_IMAGE_PREFIX.length));
    if (image) map.addImage(e.id, image, { pixelRatio: PIXEL_RATIO });
  });
}
