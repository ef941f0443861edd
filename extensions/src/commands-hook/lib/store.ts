/**
 * Database side of the lifecycle. Every transition reads the row under a row lock, asks the pure
 * rules what to write, and writes through Directus's ItemsService in the same transaction, so
 * revisions, activity and realtime subscribers see each change, and two writers (a response
 * consumer and a dispatcher, maybe on different Directus instances) can never interleave.
 */
import type { ApiExtensionContext } from '@directus/extensions';
import type { Accountability } from '@directus/types';
import type { Knex } from 'knex';
import type { CommandPatch, CommandRow, CommandStatus, Decision } from '../../shared/commands';

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

export async function lockCommand(trx: Knex, id: string | number): Promise<StoredCommand | null> {
  const raw = await trx(COMMANDS).where('id', id).forUpdate().first(ROW_FIELDS);
  return raw ? normalizeRow(raw) : null;
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

/** Writes a patch as the extension inside the caller's transaction. */
export async function writePatch(ctx: Ctx, trx: Knex, id: string | number, patch: CommandPatch): Promise<void> {
  const schema = await ctx.getSchema({ database: trx });
  const items = new ctx.services.ItemsService(COMMANDS, { schema, knex: trx, accountability: SYSTEM_ACCOUNTABILITY });
  await items.updateOne(id, patch as Record<string, unknown>);
}

export interface TransitionResult {
  row: StoredCommand | null;
  decision: Decision | null;
}

/** Locks the command, decides, writes. `decision` is null when the command does not exist. */
export async function transition(
  ctx: Ctx,
  id: string | number,
  decide: (row: StoredCommand) => Decision,
): Promise<TransitionResult> {
  return ctx.database.transaction(async (trx) => {
    const row = await lockCommand(trx, id);
    if (!row) return { row: null, decision: null };
    const decision = decide(row);
    if ('patch' in decision) await writePatch(ctx, trx, id, decision.patch);
    return { row, decision };
  });
}

/** Pending, unexpired commands of a device in creation order, locked for dispatch. */
export async function lockPendingForDevice(trx: Knex, device: string | number, now: Date): Promise<StoredCommand[]> {
  const rows = await trx(COMMANDS)
    .where({ device, status: 'pending' })
    .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .forUpdate()
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
