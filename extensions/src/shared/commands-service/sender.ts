/** Turns Directus accountability into the `Sender` the pure rules understand. */
import type { Accountability } from '@directus/types';
import type { Knex } from 'knex';
import type { Sender } from '../commands';
import { isSystemAccountability } from './store';

/** Role names change rarely; a short cache saves a query on every command create. */
const ROLE_CACHE_MS = 10_000;
const roleNames = new Map<string, { name: string; at: number }>();

async function namesOf(db: Knex, ids: string[]): Promise<string[]> {
  const now = Date.now();
  const missing = ids.filter((id) => {
    const hit = roleNames.get(id);
    return !hit || now - hit.at > ROLE_CACHE_MS;
  });
  if (missing.length > 0) {
    const rows: Array<{ id: string; name: string }> = await db('directus_roles')
      .whereIn('id', missing)
      .select('id', 'name');
    for (const r of rows) roleNames.set(r.id, { name: r.name, at: now });
  }
  return ids.flatMap((id) => {
    const hit = roleNames.get(id);
    return hit ? [hit.name] : [];
  });
}

export async function senderOf(accountability: Accountability | null | undefined, db: Knex): Promise<Sender | null> {
  if (!accountability || isSystemAccountability(accountability)) return null;
  const roleIds = [
    ...new Set([...(accountability.roles ?? []), ...(accountability.role ? [accountability.role] : [])]),
  ];
  const names = roleIds.length === 0 ? [] : await namesOf(db, roleIds);
  return { user: accountability.user ?? null, admin: accountability.admin === true, roleNames: names };
}
