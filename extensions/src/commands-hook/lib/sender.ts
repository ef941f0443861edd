/** Turns Directus accountability into the `Sender` the pure rules understand. */
import type { Accountability } from '@directus/types';
import type { Knex } from 'knex';
import type { Sender } from '../../shared/commands';
import { isSystemAccountability } from './store';

export async function senderOf(accountability: Accountability | null | undefined, db: Knex): Promise<Sender | null> {
  if (!accountability || isSystemAccountability(accountability)) return null;
  const roleIds = [
    ...new Set([...(accountability.roles ?? []), ...(accountability.role ? [accountability.role] : [])]),
  ];
  const roleNames =
    roleIds.length === 0
      ? []
      : (await db('directus_roles').whereIn('id', roleIds).select('name')).map((r: { name: string }) => r.name);
  return { user: accountability.user ?? null, admin: accountability.admin === true, roleNames };
}
