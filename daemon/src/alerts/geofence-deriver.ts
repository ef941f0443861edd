/**
 * The geofence check inside the history derivation (an EventDeriver, see ../history/hooks.ts):
 * `load` measures the window's unflagged fixes against nearby fences with PostGIS and reads the
 * fence state before them from stored events; `derive` runs the pure hysteresis. Events are
 * `geofence_enter` / `geofence_exit` (key: the geofence id) and zone `overspeed_start` /
 * `overspeed_end` (key `zone:<id>`); all carry `geofence` (id) and `geofence_name` in attributes.
 *
 * Where it starts folding: the window only owns events after `from`, so fixes before it matter
 * only for the state at `from`. It folds from `PRE_FIXES` good fixes before `from`, with the state
 * stored events give at the first of them (events at that fix's time included, since an event's
 * time is its confirming fix): a change still pending there (a dwell run that began earlier) is
 * reproduced as long as it spans fewer fixes than that.
 */
import type { Knex } from 'knex';
import type { DeriverInput, EventDeriver } from '../history/hooks.js';
import type { DerivedEvent as HistoryEvent, HistoryPosition } from '../history/types.js';
import { fencesById, measureFixes, priorFenceState } from './geofence-sql.js';
import { type Fence, type FenceFix, type FenceState, geofenceEvents, type HysteresisSettings } from './hysteresis.js';

/** Good fixes before the window's start folded again to recover a pending change. */
export const PRE_FIXES = 20;

interface Loaded {
  fixes: FenceFix[];
  fences: Map<number, Fence>;
  prior: Map<number, FenceState>;
}

const isGoodFix = (p: HistoryPosition) => p.flags.length === 0;

/** The good fixes the check folds over (time order) and whether state before them comes from events. */
export function foldedFixes(
  positions: readonly HistoryPosition[],
  from: number | null,
): { fixes: HistoryPosition[]; boundary: number | null } {
  const good = positions.filter(isGoodFix).sort((a, b) => a.time - b.time);
  if (from === null || good.length === 0) return { fixes: good, boundary: null };
  let first = good.findIndex((p) => p.time >= from);
  if (first < 0) first = good.length;
  const start = Math.max(0, first - PRE_FIXES);
  const boundary = good[start]!.time;
  // The boundary fix itself is represented by the events stored at its time.
  return { fixes: good.slice(start).filter((p) => p.time > boundary), boundary };
}

export function geofenceDeriver(settings: HysteresisSettings): EventDeriver<Loaded> {
  return {
    name: 'geofences',
    async load(trx: Knex.Transaction, input: DeriverInput): Promise<Loaded> {
      const { fixes, boundary } = foldedFixes(input.positions, input.from);
      const prior = boundary === null ? new Map() : await priorFenceState(trx, input.device, boundary + 1);
      const measured = await measureFixes(trx, fixes, settings.marginM);
      const missing = [...prior.keys()].filter((id) => !measured.fences.has(id));
      const fences = new Map(measured.fences);
      for (const [id, f] of await fencesById(trx, missing)) fences.set(id, f);
      return {
        prior,
        fences,
        fixes: fixes.map((p, i) => ({
          time: p.time,
          position: p.id,
          lon: p.lon,
          lat: p.lat,
          speed: p.speed,
          flagged: false,
          fences: measured.distances.get(i) ?? new Map(),
        })),
      };
    },
    derive(_input: DeriverInput, loaded: Loaded): HistoryEvent[] {
      const { events } = geofenceEvents(loaded.fixes, loaded.fences, loaded.prior, settings);
      return events.map((e) => ({
        type: e.type,
        time: e.time,
        key: e.key,
        location: { lat: e.lat, lon: e.lon },
        attributes: e.attributes,
        position: e.position,
      }));
    },
  };
}
