/**
 * gzip for the large JSON answers (10k devices ≈ 3.4 MB of GeoJSON, ~10x smaller gzipped).
 * Directus itself does not compress responses. zlib runs on the libuv thread pool, so a big body
 * does not block the event loop.
 */
import { promisify } from 'node:util';
import { constants, gzip } from 'node:zlib';
import type { Request, Response } from 'express';

const gzipAsync = promisify(gzip);
/** Below this, compression saves too little to be worth the CPU. */
export const MIN_COMPRESS_BYTES = 16 * 1024;

export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().split(';');
    if (coding?.trim().toLowerCase() !== 'gzip') return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

export async function sendBody(req: Request, res: Response, body: string, type: string): Promise<void> {
  res.type(type);
  res.vary('Accept-Encoding');
  const raw = Buffer.from(body, 'utf8');
  if (raw.length < MIN_COMPRESS_BYTES || !acceptsGzip(req.headers['accept-encoding'])) {
    res.send(raw);
    return;
  }
  const zipped = await gzipAsync(raw, { level: constants.Z_BEST_SPEED });
  res.set('Content-Encoding', 'gzip');
  res.send(zipped);
}
