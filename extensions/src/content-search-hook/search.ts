/**
 * Searching positions by device. Directus's search only looks at a collection's own string
 * columns, and positions have none, so typing an IMEI in the Content module found nothing. A
 * search on positions becomes a filter on the related device's IMEI or name instead.
 */

export interface ItemsQuery {
  search?: string | null;
  filter?: Record<string, unknown> | null;
  [key: string]: unknown;
}

/** Collections whose search goes to their device (the `device` many-to-one field). */
export const SEARCH_BY_DEVICE = new Set(['positions']);

export function searchByDevice(query: ItemsQuery): ItemsQuery {
  const q = typeof query.search === 'string' ? query.search.trim() : '';
  if (!q) return query;
  const byDevice = {
    _or: [{ device: { imei: { _contains: q } } }, { device: { name: { _icontains: q } } }],
  };
  const { search: _dropped, ...rest } = query;
  return { ...rest, filter: query.filter ? { _and: [query.filter, byDevice] } : byDevice };
}
