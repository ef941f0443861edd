/**
 * /fleet-commands: cancel a pending/queued command, retry a failed/expired one (listing commands is
 * /items/commands). Every route needs a signed-in user; reads go through ItemsService with the
 * caller's accountability (so Directus permissions decide visibility).
 *
 * Who may cancel or retry a command (also one someone else created): a sender (Admin or
 * FLEET_COMMAND_SENDER_ROLES) who may read it and who could create it now with their own rights —
 * the same role and allow-list checks as create. The item records who (`cancelled_by`,
 * `retried_by`) and the Directus activity of the write names them.
 */
import { defineEndpoint } from '@directus/extensions-sdk';
import type { Accountability, SchemaOverview } from '@directus/types';
import type { NextFunction, Request, Response } from 'express';
import { assertMayCommand, assertMaySend, cancel, parseCommandConfig, retry } from '../shared/commands';
import {
  COMMANDS,
  CommandConflictError,
  CommandForbiddenError,
  CommandInvalidError,
  CommandNotFoundError,
  type Ctx,
  commandClient,
  currentRuntime,
  dispatchDeviceSafely,
  installRuntime,
  type Runtime,
  readCommand,
  senderOf,
  toDirectusError,
  transition,
} from '../shared/commands-service';

type DirectusRequest = Request & { accountability?: Accountability; schema?: SchemaOverview };

/** A key as the collections hold it (integer); anything else is a 400, never a database error. */
function integerKey(raw: unknown, what: string): string {
  const text = String(raw);
  if (!/^\d{1,10}$/.test(text) || Number(text) > 2_147_483_647) {
    throw new CommandInvalidError({ reason: `"${text.slice(0, 40)}" is not a ${what} id.` });
  }
  return text;
}

/** The command as cancel and retry answer with it. */
const RETURNED_FIELDS = [
  'id',
  'device',
  'text',
  'payload_hex',
  'status',
  'response',
  'error',
  'created_at',
  'queued_at',
  'sent_at',
  'answered_at',
  'expires_at',
  'attempts',
  'instance_id',
  'cancelled_by',
  'retried_by',
];

export default defineEndpoint({
  id: 'fleet-commands',
  handler: (router, context) => {
    const ctx = context as unknown as Ctx;
    const config = parseCommandConfig(context.env);
    // The hook owns the runtime (and replaces it on reload); look it up per request.
    const runtimeNow = async (): Promise<Runtime> => {
      const rt = currentRuntime();
      return rt && !rt.closed ? rt : installRuntime(config);
    };

    const route =
      (fn: (req: DirectusRequest, res: Response) => Promise<void>) =>
      (req: Request, res: Response, next: NextFunction) => {
        fn(req as DirectusRequest, res).catch((err) => next(toDirectusError(err)));
      };

    const accountabilityOf = (req: DirectusRequest): Accountability => {
      const acc = req.accountability;
      if (!acc?.user) throw new CommandForbiddenError({ reason: 'Sign in to use the command endpoints.' });
      return acc;
    };

    /** Reads the command as the caller (404 if it does not exist or they may not see it). */
    const readAsCaller = async (req: DirectusRequest, acc: Accountability, id: string) => {
      const items = new context.services.ItemsService(COMMANDS, {
        schema: req.schema ?? (await context.getSchema()),
        accountability: acc,
      });
      const rows = await items.readByQuery({ filter: { id: { _eq: id } }, fields: ['id'], limit: 1 });
      if (rows.length === 0) throw new CommandNotFoundError({ reason: `Command ${id} not found.` });
    };

    const readBack = async (id: string | number) => {
      const items = new context.services.ItemsService(COMMANDS, { schema: await context.getSchema() });
      return items.readOne(id, { fields: RETURNED_FIELDS });
    };

    /**
     * The common check before cancel and retry: a sender who may read the command and could
     * create it with their own rights. Returns its id and the acting user.
     */
    const authorizeChange = async (req: DirectusRequest): Promise<{ id: string; user: string }> => {
      const acc = accountabilityOf(req);
      const sender = await senderOf(acc, context.database);
      assertMaySend(sender, config);
      const id = integerKey(req.params.id, 'command');
      await readAsCaller(req, acc, id);
      const row = await readCommand(context.database, id);
      if (!row) throw new CommandNotFoundError({ reason: `Command ${id} not found.` });
      assertMayCommand(row.text, row.payload_hex, sender, config);
      return { id, user: acc.user as string };
    };

    /** The row a transition changed, or the error that says why it did not. */
    const applied = (id: string, { row, decision }: Awaited<ReturnType<typeof transition>>) => {
      if (!row || !decision) throw new CommandNotFoundError({ reason: `Command ${id} not found.` });
      if ('ignore' in decision) throw new CommandConflictError({ reason: decision.ignore });
      return row;
    };

    router.post(
      '/:id/cancel',
      route(async (req, res) => {
        const { id, user } = await authorizeChange(req);
        const row = applied(id, await transition(ctx, id, (r) => cancel(r, user), user));
        const runtime = await runtimeNow();
        if (row.status === 'queued' && row.instance_id && runtime.config.redis) {
          await withdrawOutbound(runtime, row.instance_id, String(row.id)).catch((err) =>
            context.logger.warn({ err, id }, 'fleet commands: could not withdraw a cancelled command'),
          );
        }
        res.json({ data: await readBack(id) });
      }),
    );

    router.post(
      '/:id/retry',
      route(async (req, res) => {
        const { id, user } = await authorizeChange(req);
        const runtime = await runtimeNow();
        const row = applied(
          id,
          await transition(ctx, id, (r) => retry(r, Date.now(), runtime.config.ttlMs, user), user),
        );
        await dispatchDeviceSafely(ctx, runtime, row.device);
        res.json({ data: await readBack(id) });
      }),
    );
  },
});

/**
 * Best effort: delete a cancelled command's entry from the outbound stream if the instance has not
 * read it yet. If it already has, the device may still get it; its outcome is then ignored, since
 * `cancelled` is final.
 */
async function withdrawOutbound(runtime: Runtime, instance: string, commandId: string): Promise<void> {
  const redis = commandClient(runtime);
  const stream = runtime.keys.commandsOutbound(instance);
  const entries = (await redis.xrange(stream, '-', '+')) as Array<[string, string[]]>;
  const ids = entries
    .filter(([, f]) => {
      const i = f.indexOf('commandId');
      return i >= 0 && i % 2 === 0 && f[i + 1] === commandId;
    })
    .map(([id]) => id);
  if (ids.length > 0) await redis.xdel(stream, ...ids);
}
