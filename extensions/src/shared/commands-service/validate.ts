/** The create/update filters: gather the facts, apply the pure rules, map refusals to Directus errors. */
import type { Accountability } from '@directus/types';
import type { Knex } from 'knex';
import {
  assertUpdateAllowed,
  type CommandConfig,
  type DeviceFacts,
  deviceEnabled,
  deviceKey,
  validateCreate,
} from '../commands';
import { toDirectusError } from './errors';
import { senderOf } from './sender';
import { DEVICES } from './store';

async function deviceFacts(db: Knex, payload: Record<string, unknown>): Promise<DeviceFacts> {
  const key = deviceKey(payload.device);
  if (key === null) return { exists: false, enabled: false, label: 'reference' };
  // Postgres refuses to compare an integer key with text that is not a number.
  if (typeof key === 'string' && !/^[\w-]+$/.test(key)) return { exists: false, enabled: false, label: `"${key}"` };
  const row = await db(DEVICES)
    .where('id', key)
    .first()
    .catch(() => undefined);
  const label = row?.name ? `"${row.name}" (${key})` : String(key);
  return row ? { exists: true, enabled: deviceEnabled(row), label } : { exists: false, enabled: false, label };
}

export async function filterCreate(
  payload: Record<string, unknown>,
  db: Knex,
  accountability: Accountability | null | undefined,
  config: CommandConfig,
): Promise<Record<string, unknown>> {
  try {
    // Independent reads: one round trip of the request's time instead of two.
    const [sender, device] = await Promise.all([senderOf(accountability, db), deviceFacts(db, payload)]);
    return validateCreate({ payload, sender, device, now: Date.now(), config });
  } catch (err) {
    throw toDirectusError(err);
  }
}

export async function filterUpdate(
  payload: Record<string, unknown>,
  db: Knex,
  accountability: Accountability | null | undefined,
): Promise<Record<string, unknown>> {
  try {
    assertUpdateAllowed(payload, await senderOf(accountability, db));
    return payload;
  } catch (err) {
    throw toDirectusError(err);
  }
}
