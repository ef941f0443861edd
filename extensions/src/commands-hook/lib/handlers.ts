/** What the extension does with each entry of `commands:responses` and `connections:events`. */
import { decodeCommandResponse, decodeConnectionEvent } from '@fleet/daemon/contract';
import { applyResponse } from '../../shared/commands';
import { PoisonEntryError, type StreamFields } from './consumer';
import { dispatchDeviceSafely } from './dispatcher';
import type { Runtime } from './runtime';
import { type Ctx, deviceByImei, transition } from './store';

function decodeOr<T>(decode: (f: StreamFields) => T, fields: StreamFields): T {
  try {
    return decode(fields);
  } catch (err) {
    throw new PoisonEntryError(`undecodable entry: ${(err as Error).message}`);
  }
}

/** Writes an outcome to its command (ignoring stale attempts and backward moves). */
export async function handleResponse(ctx: Ctx, runtime: Runtime, fields: StreamFields): Promise<void> {
  const r = decodeOr(decodeCommandResponse, fields);
  if (!/^[\w-]+$/.test(r.commandId)) throw new PoisonEntryError(`bad command id ${r.commandId}`);
  const { row, decision } = await transition(ctx, r.commandId, (row) =>
    applyResponse(row, r, runtime.config.maxAttempts),
  );
  if (!row || !decision) {
    ctx.logger.warn({ commandId: r.commandId }, 'fleet commands: response for an unknown command ignored');
    return;
  }
  if ('ignore' in decision) {
    ctx.logger.debug?.({ commandId: r.commandId, outcome: r.outcome, why: decision.ignore }, 'response ignored');
    return;
  }
  if (decision.redispatch) await dispatchDeviceSafely(ctx, runtime, row.device);
}

/** On connect, send the device whatever waited for it. */
export async function handleConnectionEvent(ctx: Ctx, runtime: Runtime, fields: StreamFields): Promise<void> {
  const e = decodeOr(decodeConnectionEvent, fields);
  if (e.type !== 'connected') return;
  const device = await deviceByImei(ctx.database, e.imei);
  if (device === null) return;
  await dispatchDeviceSafely(ctx, runtime, device);
}
