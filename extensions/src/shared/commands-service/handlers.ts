/** What the extension does with each entry of `commands:responses` and `connections:events`. */
import type { CommandResponse, ConnectionEvent } from '@fleet/daemon/contract';
import { foldResponses } from '../commands';
import { dispatchDeviceSafely } from './dispatcher';
import type { Runtime } from './runtime';
import { type Ctx, deviceByImei, transition } from './store';

const COMMAND_KEY = /^\d{1,18}$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Writes the outcomes of one command (read together, in stream order) as one transition, ignoring
 * stale attempts and backward moves. Outcomes naming an impossible command key are logged and
 * skipped.
 */
export async function handleResponses(ctx: Ctx, runtime: Runtime, all: CommandResponse[]): Promise<void> {
  // Keys are integers (or UUIDs); anything else could never match and would fail the query forever.
  const responses = all.filter((r) => COMMAND_KEY.test(r.commandId));
  if (responses.length < all.length)
    ctx.logger.error({ all }, 'fleet commands: response with a bad command id dropped');
  const first = responses[0];
  if (!first) return;
  let redispatchNeeded = false;
  const { row } = await transition(ctx, first.commandId, (row) => {
    const folded = foldResponses(row, responses, runtime.config.maxAttempts);
    if (folded.applied === 0) return { ignore: 'nothing new' };
    redispatchNeeded = folded.redispatch;
    return { patch: folded.patch, redispatch: folded.redispatch };
  });
  if (!row) {
    ctx.logger.warn({ commandId: first.commandId }, 'fleet commands: response for an unknown command ignored');
    return;
  }
  if (redispatchNeeded) await dispatchDeviceSafely(ctx, runtime, row.device);
}

/** On connect, send the device whatever waited for it. */
export async function handleConnectionEvent(ctx: Ctx, runtime: Runtime, e: ConnectionEvent): Promise<void> {
  if (e.type !== 'connected') return;
  const device = await deviceByImei(ctx.database, e.imei);
  if (device === null) return;
  await dispatchDeviceSafely(ctx, runtime, device);
}
