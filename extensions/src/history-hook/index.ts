/**
 * History hook: the API refuses writes to derived collections and accumulators, lets only
 * Administrators change corrections, device overrides and fleet settings (validated), and asks
 * the history worker to recompute what a correction or a settings change invalidates.
 * Registration only; the rules are in ../shared/history.
 */
import { createError } from '@directus/errors';
import { defineHook } from '@directus/extensions-sdk';
import { DERIVED_COLLECTIONS, FLEET_SETTINGS_COLLECTION, HISTORY_DIRTY_TABLE } from '@fleet/daemon/history';
import {
  derivedWrite,
  deviceWrite,
  fleetSettingsWrite,
  recomputeDays,
  type WriteDecision,
} from '../shared/history/rules';

const HistoryInvalidError = createError<{ reason: string }>('FLEET_HISTORY_INVALID', (e) => e.reason, 400);
const HistoryForbiddenError = createError<{ reason: string }>('FLEET_HISTORY_FORBIDDEN', (e) => e.reason, 403);

function apply(decision: WriteDecision): Record<string, unknown> {
  if (decision.ok) return decision.payload;
  throw decision.status === 400
    ? new HistoryInvalidError({ reason: decision.reason })
    : new HistoryForbiddenError({ reason: decision.reason });
}

const isAdmin = (accountability: { admin?: boolean } | null | undefined) => accountability?.admin === true;

export default defineHook(({ filter, action }, { database, logger, env }) => {
  for (const collection of DERIVED_COLLECTIONS) {
    for (const event of ['create', 'update', 'delete']) {
      filter(`${collection}.items.${event}`, () => apply(derivedWrite(collection)));
    }
  }
  filter('devices.items.update', (payload, _meta, { accountability }) =>
    apply(deviceWrite(payload as Record<string, unknown>, { admin: isAdmin(accountability) })),
  );
  for (const event of ['create', 'update']) {
    filter(`${FLEET_SETTINGS_COLLECTION}.items.${event}`, (payload, _meta, { accountability }) =>
      apply(fleetSettingsWrite(payload as Record<string, unknown>, { admin: isAdmin(accountability) })),
    );
  }

  // What a change invalidates (the worker recomputes it; older history follows with
  // `npm run daemon -- derive --from …`): a correction only moves the accumulators, so the device's
  // latest window is enough; detection settings change every derived row, so the devices they
  // apply to are recomputed over the last HISTORY_RECOMPUTE_DAYS (bounded: one window is one
  // transaction reading all its positions).
  const horizonDays = recomputeDays(env.HISTORY_RECOMPUTE_DAYS);
  const mark = (devices: number[] | 'all', from: 'latest' | 'horizon') =>
    database
      .raw(
        `INSERT INTO ${HISTORY_DIRTY_TABLE} (device, from_time, to_time)
         SELECT d.id, ${from === 'latest' ? 'coalesce(d.last_fix_at, now())' : `now() - make_interval(days => ${horizonDays})`},
                coalesce(d.last_fix_at, now())
           FROM devices d ${devices === 'all' ? '' : 'WHERE d.id = ANY(?::int[])'}`,
        // One array literal (knex would spread a JS array into a list of bindings).
        devices === 'all' ? [] : [`{${devices.join(',')}}`],
      )
      .catch((err: unknown) => logger.warn({ err: String(err) }, 'fleet history: could not request a recomputation'));

  action('devices.items.update', async (meta) => {
    const payload = meta.payload as Record<string, unknown>;
    const decision = deviceWrite(payload, { admin: true });
    if (!decision.ok || !decision.recompute) return;
    const keys = (meta.keys as (string | number)[]).map(Number).filter(Number.isInteger);
    if (keys.length === 0) return;
    await mark(keys, 'history_settings' in payload ? 'horizon' : 'latest');
  });
  for (const event of ['create', 'update']) {
    action(`${FLEET_SETTINGS_COLLECTION}.items.${event}`, () => mark('all', 'horizon'));
  }
});
