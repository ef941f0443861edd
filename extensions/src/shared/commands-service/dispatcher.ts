/**
 * Dispatch: put a device's pending commands on the outbound stream of the ingestion instance that
 * holds its socket, oldest first. The Redis step (registry → heartbeat → XADD) is the contract's
 * `fleetDispatchCommand` script; the database step marks each command queued (under the device lock).
 *
 * The whole pass holds the device's lock, so two dispatchers of the same device (create action,
 * connect event, sweeper, other Directus instances) serialise and never send a command twice or
 * out of order.
 */
import { encodeOutboundCommand } from '@fleet/daemon/contract';
import { markQueued, toMs } from '../commands';
import { commandClient, type Runtime } from './runtime';
import { type Ctx, withDevicePending, writePatch } from './store';

/** Outbound streams are trimmed near this length; the sweeper recovers anything trimmed unread. */
export const OUTBOUND_MAXLEN = '100000';

export interface DispatchResult {
  queued: number;
  /** Instance that took the commands, or null when the device is offline. */
  instance: string | null;
}

export async function dispatchDevice(ctx: Ctx, runtime: Runtime, device: string | number): Promise<DispatchResult> {
  if (!runtime.config.redis) return { queued: 0, instance: null };
  const redis = commandClient(runtime);
  const { keys } = runtime;
  // The reads come with the lock, in one round trip: between the create's commit and the device's
  // socket there are then two round trips, this and the dispatch script.
  return withDevicePending(ctx.database, device, async (rows, imei) => {
    if (rows.length === 0 || !imei) return { queued: 0, instance: null };
    let queued = 0;
    let instance: string | null = null;
    for (const row of rows) {
      const fields = encodeOutboundCommand({
        commandId: String(row.id),
        imei,
        text: row.text,
        payloadHex: row.payload_hex ?? '',
        expiresAt: toMs(row.expires_at) ?? Date.now() + runtime.config.ttlMs,
        attempt: row.attempts,
      });
      // Taken before the XADD: the instance may send (and report `sent`) before the script returns.
      const handedAt = Date.now();
      const result = await redis.fleetDispatchCommand(
        keys.connectionsRegistry,
        keys.heartbeat(''),
        keys.commandsOutbound(''),
        imei,
        OUTBOUND_MAXLEN,
        ...fields,
      );
      // Offline (or its instance is dead): it and everything after it stay pending, in order.
      if (!result) break;
      instance = String(result[0]);
      const decision = markQueued(row, row.attempts, instance, handedAt);
      if ('patch' in decision) {
        await writePatch(ctx, row.id, decision.patch);
        queued++;
      }
    }
    return { queued, instance };
  });
}

/** Dispatch without throwing: failures are logged, and the sweeper picks the commands up later. */
export async function dispatchDeviceSafely(ctx: Ctx, runtime: Runtime, device: string | number): Promise<void> {
  try {
    await dispatchDevice(ctx, runtime, device);
  } catch (err) {
    ctx.logger.warn({ err, device }, 'fleet commands: dispatch failed; the sweeper will retry');
  }
}
