/**
 * `--register`: creates the simulated IMEIs as enabled devices so ingestion accepts them. Uses the
 * daemon's DB_* settings; existing devices are left untouched (ON CONFLICT DO NOTHING).
 */
import type { Knex } from 'knex';
import { simulatedImei } from './imei.js';

export interface RegisterOptions {
  devices: number;
  seed: number;
  firstIndex?: number;
  model?: string;
}

/** Inserts the fleet's devices; returns how many rows were new. */
export async function registerDevices(db: Knex, options: RegisterOptions): Promise<number> {
  const first = options.firstIndex ?? 0;
  let inserted = 0;
  for (let start = 0; start < options.devices; start += 1000) {
    const rows = [];
    for (let i = start; i < Math.min(options.devices, start + 1000); i++) {
      const imei = simulatedImei(options.seed, first + i);
      rows.push({ imei, name: `Simulated ${imei.slice(-6)}`, model: options.model ?? 'FMB920', enabled: true });
    }
    const result = await db('devices').insert(rows).onConflict('imei').ignore().returning('imei');
    inserted += result.length;
  }
  return inserted;
}
