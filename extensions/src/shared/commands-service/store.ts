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
import { type CommandPatch, type CommandRow, type CommandStatus, type Decision, isTerminal } from '../commands';
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

function commandById(db: Knex, id: string | number): Knex.QueryBuilder {
  return db(COMMANDS).where('id', id).select(ROW_FIELDS);
}

export async function readCommand(db: Knex, id: string | number): Promise<StoredCommand | null> {
  const [raw] = await commandById(db, id);
  return raw ? normalizeRow(raw) : null;
}

/** Shown as the origin of the extension's own writes (informative only: clients can set it too). */
export const SYSTEM_ORIGIN = 'fleet-commands';

/**
 * Accountabilities this module made. Directus hands a service's accountability object to the
 * filters it runs, so membership (an object identity no request can forge) marks a system write —
 * not `origin`, which any client sets with a header.
 */
const SYSTEM_WRITES = new WeakSet<Accountability>();

/**
 * An admin accountability for the extension's lifecycle writes: Directus records activity and
 * revisions only for writes that carry one. `actingUser` is the user a cancel or retry acts for,
 * so the activity names them; null for the extension's own transitions.
 */
export function systemAccountability(actingUser: string | null = null): Accountability {
  const a: Accountability = {
    role: null,
    user: actingUser,
    roles: [],
    admin: true,
    app: false,
    ip: null,
    origin: SYSTEM_ORIGIN,
  };
  SYSTEM_WRITES.add(a);
  return a;
}

export const SYSTEM_ACCOUNTABILITY: Accountability = systemAccountability();

/** Only code in this module can produce one. */
export function isSystemAccountability(a: Accountability | null | undefined): boolean {
  return !!a && SYSTEM_WRITES.has(a);
}

/** Writes a patch as the extension (for `actingUser`, if any); ItemsService commits it, then emits the update event. */
export async function writePatch(
  ctx: Ctx,
  id: string | number,
  patch: CommandPatch,
  actingUser: string | null = null,
): Promise<void> {
  const schema = await ctx.getSchema();
  const items = new ctx.services.ItemsService(COMMANDS, {
    schema,
    knex: ctx.database,
    accountability: actingUser === null ? SYSTEM_ACCOUNTABILITY : systemAccountability(actingUser),
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
  actingUser: string | null = null,
): Promise<TransitionResult> {
  const device =
    devicesOfCommands.get(String(id)) ?? (await ctx.database(COMMANDS).where('id', id).first('device'))?.device;
  if (device === undefined || device === null) return { row: null, decision: null };
  return deviceLocks(ctx.database).run(
    device,
    // The row comes with the lock, in one round trip (see ./locks).
    () => [commandById(ctx.database, id)],
    async ([rows = []]) => {
      const raw = rows[0] as Record<string, unknown> | undefined;
      if (!raw) return { row: null, decision: null };
      const row = normalizeRow(raw);
      const decision = decide(row);
      if ('patch' in decision) {
        await writePatch(ctx, id, decision.patch, actingUser);
        if (decision.patch.status && isTerminal(decision.patch.status)) devicesOfCommands.delete(String(id));
      }
      return { row, decision };
    },
  );
}

/**
 * The device of each command this process read pending (a command's device never changes), so
 * the outcomes that follow its dispatch take the device lock without first asking the database
 * whose command it is. Bounded: the oldest are forgotten (and asked for again if needed).
 */
const DEVICES_REMEMBERED = 10_000;
const devicesOfCommands = new Map<string, string | number>();

function rememberDevice(id: string | number, device: string | number): void {
  const key = String(id);
  devicesOfCommands.delete(key);
  devicesOfCommands.set(key, device);
  if (devicesOfCommands.size > DEVICES_REMEMBERED) {
    const oldest = devicesOfCommands.keys().next().value;
    if (oldest !== undefined) devicesOfCommands.delete(oldest);
  }
}

/** Pending, unexpired commands of a device in creation order (read under the device lock). */
function pendingForDevice(db: Knex, device: string | number, now: Date): Knex.QueryBuilder {
  return db(COMMANDS)
    .where({ device, status: 'pending' })
    .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .select(ROW_FIELDS);
}

function deviceImei(db: Knex, device: string | number): Knex.QueryBuilder {
  return db(DEVICES).where('id', device).select('imei');
}

/**
 * Runs `fn` holding the device's lock, with its pending commands and its IMEI read in the round
 * trip that takes the lock (see ./locks).
 */
export function withDevicePending<T>(
  db: Knex,
  device: string | number,
  fn: (pending: StoredCommand[], imei: string | null) => Promise<T>,
): Promise<T> {
  return deviceLocks(db).run(
    device,
    () => [pendingForDevice(db, device, new Date()), deviceImei(db, device)],
    ([pending = [], devices = []]) => {
      const imei = (devices[0] as { imei?: unknown } | undefined)?.imei;
      const rows = (pending as Record<string, unknown>[]).map(normalizeRow);
      for (const row of rows) rememberDevice(row.id, device);
      return fn(rows, imei ? String(imei) : null);
    },
  );
}

export async function deviceByImei(db: Knex, imei: string): Promise<string | number | null> {
  const row = await db(DEVICES).where('imei', imei).first('id');
  return row ? (row.id as string | number) : null;
}
