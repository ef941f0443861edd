/**
 * The geofence check inside the history derivation (an EventDeriver, see ../history/hooks.ts):
 * `load` measures the unflagged fixes of a batch's windows against nearby fences with PostGIS (one
 * statement for all) and reads the fence state before them from stored events (one for all);
 * `derive` runs the pure hysteresis per window. Events are `geofence_enter`/ `geofence_exit` (key: the geofence id) and zone `overspeed_start` /
 * `overspeed_end` (key `zone:<id>`); all carry `geofence` (id) and `geofence_name` in attributes.
 *
 * Where it starts folding: the window only owns events after `from`, so fixes before it matter
 * only for the state at `from`. It folds from `PRE_FIXES` good fixes before `from`, with the state
 * stored events give at the first of them (events at that fix's time included, since an event's
 * time is its confirming fix): a change still pending there (a dwell run that began earlier) is
 * reproduced as long as it spans fewer fixes than that.
 *
 * Measurements are cached by position id (a stored position never changes), so re-deriving a
 * growing window measures only its new fixes; the cache is dropped when the geofences change
 * (checked at most every `FENCES_CHECK_MS`, as rules are re-read).
 *
 * No active geofence (a fleet that uses none): nothing is measured or read, since every fence the
 * hysteresis could name comes from active ones. That state is checked again on every batch, so
 * the first fence drawn applies from the next batch on.
 */
import type { Knex } from 'knex';
import type { DeriverInput, EventDeriver } from '../history/hooks.js';
import type { DerivedEvent as HistoryEvent, HistoryPosition } from '../history/types.js';
import { fencesById, measureFixes, priorFenceStates } from './geofence-sql.js';
import { type Fence, type FenceFix, type FenceState, geofenceEvents, type HysteresisSettings } from './hysteresis.js';

/** Good fixes before the window's start folded again to recover a pending change. */
export const PRE_FIXES = 20;
/** How often the geofences' fingerprint is compared (a changed fence applies within this). */
export const FENCES_CHECK_MS = 1000;
/** Positions whose measurements are kept (least recently used dropped first). */
export const CACHED_POSITIONS = 500_000;

/** Signed distances per stored position, valid for one version of the geofences. */
export class MeasurementCache {
  private readonly distances = new Map<string, Map<number, number>>();
  private readonly fences = new Map<number, Fence>();
  private fingerprint: string | null = null;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private activeFences = true;

  constructor(
    private readonly max = CACHED_POSITIONS,
    private readonly checkMs = FENCES_CHECK_MS,
  ) {}

  get size(): number {
    return this.distances.size;
  }

  /** Whether any geofence was active at the last validate (until the first: assumed so). */
  get anyActive(): boolean {
    return this.activeFences;
  }

  /**
   * Drops everything when the geofences changed (any insert, update or delete changes the print).
   * While none is active, checks on every call (see the header).
   */
  async validate(db: Knex.Transaction, now = Date.now()): Promise<void> {
    if (this.activeFences && now - this.checkedAt < this.checkMs) return;
    this.checkedAt = now;
    const r = await db.raw<{ rows: Array<{ print: string; active: boolean }> }>(
      `SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) || ':' || coalesce(max(xmin::text::bigint), 0) AS print,
              bool_or(active) IS TRUE AS active
         FROM geofences`,
    );
    const print = r.rows[0]!.print;
    this.activeFences = r.rows[0]!.active;
    if (print !== this.fingerprint) {
      this.distances.clear();
      this.fences.clear();
      this.fingerprint = print;
    }
  }

  /** Distances of each fix (measuring only those not cached) and the fences they name. */
  async measure(
    db: Knex.Transaction,
    fixes: readonly HistoryPosition[],
    marginM: number,
  ): Promise<{ distances: Array<ReadonlyMap<number, number>>; fences: Map<number, Fence> }> {
    const out: Array<ReadonlyMap<number, number>> = new Array(fixes.length);
    const todo: number[] = [];
    fixes.forEach((p, i) => {
      const hit = p.id === null ? undefined : this.distances.get(String(p.id));
      if (hit) {
        // Most recently used last, so eviction takes the oldest.
        this.distances.delete(String(p.id));
        this.distances.set(String(p.id), hit);
        out[i] = hit;
      } else todo.push(i);
    });
    if (todo.length > 0) {
      const measured = await measureFixes(
        db,
        todo.map((i) => fixes[i]!),
        marginM,
      );
      for (const [id, f] of measured.fences) this.fences.set(id, f);
      todo.forEach((i, j) => {
        const d = measured.distances.get(j) ?? new Map<number, number>();
        out[i] = d;
        const id = fixes[i]!.id;
        if (id !== null) this.distances.set(String(id), d);
      });
      for (const key of this.distances.keys()) {
        if (this.distances.size <= this.max) break;
        this.distances.delete(key);
      }
    }
    const fences = new Map<number, Fence>();
    for (const d of out) for (const id of d.keys()) fences.set(id, this.fences.get(id)!);
    return { distances: out, fences };
  }
}

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

export function geofenceDeriver(
  settings: HysteresisSettings,
  cache: MeasurementCache = new MeasurementCache(),
): EventDeriver<Loaded> {
  return {
    name: 'geofences',
    // One measurement, one prior-state read and one fence lookup for the whole batch.
    async load(trx: Knex.Transaction, inputs: readonly DeriverInput[]): Promise<Loaded[]> {
      await cache.validate(trx);
      if (!cache.anyActive) return inputs.map(() => ({ fixes: [], fences: new Map(), prior: new Map() }));
      const folded = inputs.map((input) => foldedFixes(input.positions, input.from));
      const priors = await priorFenceStates(
        trx,
        inputs.flatMap((input, i) => {
          const boundary = folded[i]!.boundary;
          return boundary === null ? [] : [{ device: input.device, before: boundary + 1 }];
        }),
      );
      const measured = await cache.measure(
        trx,
        folded.flatMap((f) => f.fixes),
        settings.marginM,
      );
      const prior = inputs.map((input, i) =>
        folded[i]!.boundary === null ? new Map<number, FenceState>() : priors.get(input.device)!,
      );
      const missing = new Set(prior.flatMap((p) => [...p.keys()]).filter((id) => !measured.fences.has(id)));
      const named = await fencesById(trx, [...missing]);
      let offset = 0;
      return inputs.map((_, i) => {
        const fixes = folded[i]!.fixes;
        const distances = measured.distances.slice(offset, offset + fixes.length);
        offset += fixes.length;
        const fences = new Map<number, Fence>();
        for (const d of distances) for (const id of d.keys()) fences.set(id, measured.fences.get(id)!);
        for (const id of prior[i]!.keys()) {
          const f = measured.fences.get(id) ?? named.get(id);
          if (f) fences.set(id, f);
        }
        return {
          prior: prior[i]!,
          fences,
          fixes: fixes.map((p, j) => ({
            time: p.time,
            position: p.id,
            lon: p.lon,
            lat: p.lat,
            speed: p.speed,
            flagged: false,
            fences: distances[j]!,
          })),
        };
      });
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
