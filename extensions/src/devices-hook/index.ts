/**
 * Devices hook: when an edit changes who may connect (enabled, allowed networks, IMEI, delete),
 * tell every ingestion instance through `devices:control`; the one holding the device closes its
 * session within a second or so (see daemon/src/ingestion/device-control.ts). Without Redis the
 * change applies at the device's next login (after the instances' lookup cache, 10 s).
 */
import { defineHook } from '@directus/extensions-sdk';
import { DEVICES_CONTROL_MAXLEN, type DeviceControl, encodeDeviceControl } from '@fleet/daemon/contract';
import type { Knex } from 'knex';
import { parseCommandConfig } from '../shared/commands';
import { commandClient, currentRuntime, DEVICES, installRuntime } from '../shared/commands-service';
import { admissionChange } from './admission';

type Key = string | number;

export default defineHook(({ filter, action }, ctx) => {
  const config = parseCommandConfig(ctx.env);

  async function signal(db: Knex, keys: readonly Key[], change: DeviceControl['change'], imeis: string[] = []) {
    if (!config.redis || keys.length + imeis.length === 0) return;
    const rows: Array<{ imei: string | null }> =
      keys.length > 0 ? await db(DEVICES).whereIn('id', keys).select('imei') : [];
    const all = [...new Set([...imeis, ...rows.flatMap((r) => (r.imei ? [String(r.imei)] : []))])];
    const rt = currentRuntime() ?? (await installRuntime(config));
    const redis = commandClient(rt);
    const at = Date.now();
    const pipeline = redis.pipeline();
    for (const imei of all) {
      pipeline.xadd(
        rt.keys.devicesControl,
        'MAXLEN',
        '~',
        DEVICES_CONTROL_MAXLEN,
        '*',
        ...encodeDeviceControl({ imei, change, at }),
      );
    }
    await pipeline.exec();
  }

  const report = (err: unknown) => ctx.logger.warn({ err }, 'fleet devices: could not signal the ingestion instances');

  // The old IMEI must hear it too when the IMEI itself changes: read it before the write.
  filter('devices.items.update', async (payload, meta, { database }) => {
    const p = payload as Record<string, unknown>;
    if ('imei' in p) await signal(database, (meta.keys ?? []) as Key[], 'disabled').catch(report);
    return payload;
  });
  action('devices.items.update', async (meta, { database }) => {
    const change = admissionChange(meta.payload as Record<string, unknown>);
    if (change) await signal(database, (meta.keys ?? []) as Key[], change).catch(report);
  });
  filter('devices.items.delete', async (keys, _meta, { database }) => {
    await signal(database, keys as Key[], 'disabled').catch(report);
    return keys;
  });
});
