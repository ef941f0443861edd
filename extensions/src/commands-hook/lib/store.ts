/**
 * Database side of the lifecycle. Every change of a command happens while holding its device's
 * lock (see ./locks: every Directus instance agrees): read the row, ask the pure
 * rules, write through Directus's ItemsService. The write commits in ItemsService's own
 * transaction, so revisions, activity and realtime subscribers see it, and the `items.update`
 * event (which WebSocket subscribers answer by re-reading the row) fires after the commit.
 * Two writers (a response consumer and a dispatcher, maybe on different instances) never interleave.
 */
import type { ApiExtensionContext } from '@directus/extensions';
import type { Accountability } from '@directus/types';
import type { Knex } from 'knex';
import type { CommandPatch, CommandRow, CommandStatus, Decision } from '../../shared/commands';
import { deviceLocks } from './locks';

export const COMMANDS = 'commands';
export const DEVICES = 'devices';

/** The parts of the Directus extension context this code uses. */
export type Ctx = Pick<ApiExtensionContext, 'services' | 'database' | 'getSchema' | 'logger'>;

export interface StoredCommand extends CommandRow {
  device: string | number;
  text: string;
  payload_hex: string | null;
  created_at?: unknown;
}

const ROW_FIELDS = [
  'id',
  'device',
  'text',
  'payload_hex',
  'status',
  'attempts',
  'instance_id',
  'queued_at',
  'sent_at',
  'expires_at',
];

export function normalizeRow(raw: Record<string, unknown>): StoredCommand {
  return {
    ...(raw as unknown as StoredCommand),
    status: raw.status as CommandStatus,
    attempts: Number(raw.attempts ?? 1) || 1,
    instance_id: (raw.instance_id as string | null) ?? null,
  };
}

export async function readCommand(db: Knex, id: string | number): Promise<StoredCommand | null> {
  const raw = await db(COMMANDS).where('id', id).first(ROW_FIELDS);
  return raw ? normalizeRow(raw) : null;
}

/** Runs `fn` holding the lock of one device's commands (see ./locks). */
export function withDeviceLock<T>(db: Knex, device: string | number, fn: () => Promise<T>): Promise<T> {
  return deviceLocks(db).run(device, fn);
}

/** Marks the extension's own writes (see `isSystemAccountability`). */
export const SYSTEM_ORIGIN = 'fleet-commands';

/**
 * An admin accountability without a user: Directus records activity and revisions only for writes
 * that carry an accountability, and the lifecycle history should be visible in the item's revisions.
 */
export const SYSTEM_ACCOUNTABILITY: Accountability = {
  role: null,
  user: null,
  roles: [],
  admin: true,
  app: false,
  ip: null,
  origin: SYSTEM_ORIGIN,
};

/** Only code inside the API can produce an admin accountability without a user. */
export function isSystemAccountability(a: Accountability | null | undefined): boolean {
  return !!a && a.user === null && a.admin === true && a.origin === SYSTEM_ORIGIN;
}

/** Writes a patch as the extension; ItemsService commits it and then emits the update event. */
export async function writePatch(ctx: Ctx, id: string | number, patch: CommandPatch): Promise<void> {
  const schema = await ctx.getSchema();
  const items = new ctx.services.ItemsService(COMMANDS, {
    schema,
    knex: ctx.database,
    accountability: SYSTEM_ACCOUNTABILITY,
  });
  await items.updateOne(id, patch as Record<string, unknown>);
}

export interface TransitionResult {
  row: StoredCommand | null;
  decision: Decision | null;
}

/** Under the device lock: read the command, decide, write. `decision` is null when it does not exist. */
export async function transition(
  ctx: Ctx,
  id: string | number,
  decide: (row: StoredCommand) => Decision,
): Promise<TransitionResult> {
  const owner = await ctx.database(COMMANDS).where('id', id).first('device');
  if (!owner) return { row: null, decision: null };
  return withDeviceLock(ctx.database, owner.device, async () => {
    const row = await readCommand(ctx.database, id);
    if (!row) return { row: null, decision: null };
    const decision = decide(row);
    if ('patch' in decision) await writePatch(ctx, id, decision.patch);
    return { row, decision };
  });
}

/** Pending, unexpired commands of a device in creation order (read under the device lock). */
export async function pendingForDevice(db: Knex, device: string | number, now: Date): Promise<StoredCommand[]> {
  const rows = await db(COMMANDS)
    .where({ device, status: 'pending' })
    .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .select(ROW_FIELDS);
  return rows.map(normalizeRow);
}

export async function deviceImei(db: Knex, device: string | number): Promise<string | null> {
  const row = await db(DEVICES).where('id', device).first('imei');
  return row?.imei ? String(row.imei) : null;
}

export async function deviceByImei(db: Knex, imei: string): Promise<string | number | null> {
  const row = await db(DEVICES).where('imei', imei).first('id');
  return row ? (row.id as string | number) : null;
}
