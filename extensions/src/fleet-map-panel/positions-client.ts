/**
 * The positions poll's HTTP side. It uses the browser's own fetch with the Studio's session cookie
 * rather than the Studio's API client: that client lets the whole Studio start at most 5 requests
 * per 500 ms, so on opening a dashboard the map's first poll waited behind the Studio's own
 * requests (see README, Performance). A 401/403 (the session needs refreshing) goes through the
 * Studio's client, which refreshes it.
 *
 * On a dashboard that showed a fleet map last time (remembered per page path in localStorage),
 * the first full poll is started when the Studio loads the extension bundle, long before the
 * dashboard mounts the panel; the panel takes that answer if it asks with the same query.
 */
import type { FeatureCollection } from 'geojson';

/** What a poll needs from an answer. */
export interface PositionsAnswer {
  status: 200 | 304;
  data: FeatureCollection | null;
  etag: string | null;
  /** The `since` cursor for the next delta poll. */
  cursor: number | null;
  /** Started at bundle load (prefetched), not by this poll. */
  prefetched: boolean;
}

/** Asks the same through the Studio's API client (used when the session must be refreshed). */
export type PositionsFallback = (query: string, etag: string | null) => Promise<PositionsAnswer>;

const PREFETCH_KEY = 'fleet-map:prefetch';
/**
 * A prefetched answer older than this is not used. Any age is safe (the next delta poll asks
 * from the answer's own cursor), this only bounds how stale the first picture may be.
 */
const PREFETCH_MAX_AGE_MS = 30_000;

/** The prefetched answer, read and parsed as soon as it arrives (null: ask through the Studio). */
let prefetched: { url: string; at: number; answer: Promise<PositionsAnswer | null> } | null = null;

/** The Studio's API root (the page path before `/admin`), or null outside the Studio. */
export function studioApiRoot(): string | null {
  if (typeof window === 'undefined') return null;
  const parts = window.location.pathname.split('/');
  const admin = parts.indexOf('admin');
  if (admin < 0) return null;
  return new URL(`${parts.slice(0, admin).join('/')}/`, window.location.href).href;
}

function request(url: string, etag: string | null): Promise<Response> {
  return fetch(url, {
    credentials: 'same-origin',
    // our own ETag handling (a full poll every few polls), not the browser's cache
    cache: 'no-store',
    headers: etag ? { 'If-None-Match': etag } : {},
  });
}

async function read(res: Response, prefetched: boolean): Promise<PositionsAnswer | null> {
  if (res.status === 401 || res.status === 403) return null;
  if (res.status !== 200 && res.status !== 304) throw new Error(`positions: HTTP ${res.status}`);
  const cursor = Number(res.headers.get('x-fleet-cursor'));
  return {
    status: res.status,
    data: res.status === 200 ? ((await res.json()) as FeatureCollection) : null,
    etag: res.headers.get('etag'),
    cursor: Number.isFinite(cursor) && res.headers.has('x-fleet-cursor') ? cursor : null,
    prefetched,
  };
}

/** One poll: `url` is the absolute positions URL with its query, `query` the query alone. */
export async function fetchPositions(
  url: string,
  query: string,
  etag: string | null,
  fallback: PositionsFallback,
): Promise<PositionsAnswer> {
  const early =
    prefetched && prefetched.url === url && etag === null && Date.now() - prefetched.at < PREFETCH_MAX_AGE_MS
      ? prefetched.answer
      : null;
  prefetched = null;
  if (early) {
    const answer = await early.catch(() => undefined);
    // undefined: the prefetch failed on the way (network), so it is asked again below
    if (answer !== undefined) return answer ?? fallback(query, etag);
  }
  return (await read(await request(url, etag), false)) ?? fallback(query, etag);
}

/** Remembers that this page shows a fleet map polling `url` (called when the panel mounts). */
export function rememberForPrefetch(path: string, url: string): void {
  try {
    const storage = window.localStorage;
    const all = JSON.parse(storage.getItem(PREFETCH_KEY) ?? '{}') as Record<string, string>;
    if (all[path] === url) return;
    all[path] = url;
    storage.setItem(PREFETCH_KEY, JSON.stringify(all));
  } catch {
    // storage full or disabled: no prefetch next time, nothing else changes
  }
}

/** At bundle load: on a page remembered to show a fleet map, starts its first poll now. */
export function prefetchPositions(): void {
  if (typeof fetch === 'undefined' || studioApiRoot() === null) return;
  try {
    const url = (JSON.parse(window.localStorage.getItem(PREFETCH_KEY) ?? '{}') as Record<string, string>)[
      window.location.pathname
    ];
    // only our own endpoint on this origin, whatever the storage holds
    if (!url || new URL(url).origin !== window.location.origin) return;
    // Parsed on arrival, while the Studio still mounts the dashboard, not when the panel asks.
    const answer = request(url, null).then((res) => read(res, true));
    answer.catch(() => {}); // a failed prefetch is simply not used
    prefetched = { url, at: Date.now(), answer };
  } catch {
    // storage disabled or an unreadable entry: no prefetch
  }
}
