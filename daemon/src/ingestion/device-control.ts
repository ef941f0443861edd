/**
 * `devices:control`: Directus says a device's admission changed (disabled, allowed networks).
 * Every instance reads every entry (plain XREAD from where it started, no consumer group): each
 * forgets its cached answer for the IMEI, and the one holding the device closes the session if
 * the device is now refused — after the frame in progress is acknowledged, so nothing the device
 * was told is stored is lost.
 */
import type { Logger } from 'pino';
import { decodeDeviceControl, type RedisKeys, type StreamFields } from '../contract/index.js';
import { sleep } from '../sleep.js';
import { admitDevice, type CachedLookup } from './devices.js';
import type { IngestMetrics } from './metrics.js';
import type { IngestRedis } from './redis.js';
import type { DeviceRegistry } from './registry.js';
import type { TcpSession } from './session.js';

export interface DeviceControlDeps {
  /** A client of its own: XREAD BLOCK holds the connection. */
  redis: IngestRedis;
  keys: RedisKeys;
  lookup: CachedLookup;
  devices: DeviceRegistry<TcpSession>;
  logger: Logger;
  metrics: IngestMetrics;
  blockMs: number;
}

/** What one control entry means for the session holding the device (pure; see `applyControl`). */
export async function applyControl(
  deps: Pick<DeviceControlDeps, 'lookup' | 'devices' | 'logger' | 'metrics'>,
  fields: StreamFields,
): Promise<void> {
  const control = decodeDeviceControl(fields);
  deps.lookup.invalidate(control.imei);
  const session = deps.devices.get(control.imei);
  if (!session) return;
  let reason: string;
  if (control.change === 'disabled') reason = 'disabled_device';
  else {
    const admission = admitDevice(await deps.lookup(control.imei), session.remoteAddress);
    if (admission.admitted) return;
    reason = admission.reason;
  }
  deps.metrics.closedByControl.inc({ reason });
  deps.logger.warn(
    { imei: control.imei, remote: session.remote, reason },
    'closing a live session: device no longer admitted',
  );
  await session.shutdown(reason);
}

export function startDeviceControl(deps: DeviceControlDeps): { stop(): Promise<void> } {
  let stopping = false;
  const loop = (async () => {
    let lastId: string | null = null;
    while (!stopping) {
      try {
        if (lastId === null) {
          // Entries written before this instance started concern sessions it does not have.
          const tail = (await deps.redis.xrevrange(deps.keys.devicesControl, '+', '-', 'COUNT', 1)) as [
            string,
            string[],
          ][];
          lastId = tail[0]?.[0] ?? '0-0';
        }
        const res = (await deps.redis.xreadBuffer(
          'COUNT',
          100,
          'BLOCK',
          deps.blockMs,
          'STREAMS',
          deps.keys.devicesControl,
          lastId,
        )) as [Buffer, [Buffer, Buffer[]][]][] | null;
        for (const [id, fields] of res?.[0]?.[1] ?? []) {
          lastId = id.toString();
          await applyControl(deps, fields).catch((err: unknown) =>
            deps.logger.error({ err, id: lastId }, 'device control entry not applied'),
          );
        }
      } catch (err) {
        if (stopping) break;
        deps.logger.warn({ err }, 'reading devices:control failed; retrying');
        await sleep(500);
      }
    }
  })();
  return {
    async stop() {
      stopping = true;
      deps.redis.disconnect();
      await loop;
    },
  };
}
