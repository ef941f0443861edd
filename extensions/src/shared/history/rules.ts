/**
 * Who may write what of the fleet history, as plain decisions (the Core tier has no field-level
 * permissions, so the history hook applies these). Derived rows are the history worker's alone;
 * accumulators too; corrections, device overrides and fleet settings are for Administrators, and
 * must be valid.
 */
import {
  ACCUMULATOR_FIELDS,
  ADMIN_HISTORY_FIELDS,
  DERIVED_COLLECTIONS,
  DetectionSettingsSchema,
  SETTING_COLUMNS,
  SettingsOverrideSchema,
} from '@fleet/daemon/history';

export type WriteDecision =
  | { ok: true; payload: Record<string, unknown>; recompute: boolean }
  | { ok: false; status: 400 | 403; reason: string };

export interface Writer {
  admin: boolean;
}

const derived = new Set<string>(DERIVED_COLLECTIONS);

export function isDerivedCollection(collection: string): boolean {
  return derived.has(collection);
}

export function derivedWrite(collection: string): WriteDecision {
  return {
    ok: false,
    status: 403,
    reason: `${collection} is derived from positions by the history worker and cannot be edited; recompute it with "npm run daemon -- derive --from <time>"`,
  };
}

/** A devices update: accumulators are the worker's, history fields the Administrators'. */
export function deviceWrite(payload: Record<string, unknown>, writer: Writer): WriteDecision {
  const touched = (fields: readonly string[]) => fields.filter((f) => f in payload);
  const acc = touched(ACCUMULATOR_FIELDS);
  if (acc.length > 0) {
    return { ok: false, status: 403, reason: `${acc.join(', ')} are computed; set a correction instead` };
  }
  const admin = touched(ADMIN_HISTORY_FIELDS);
  if (admin.length === 0) return { ok: true, payload, recompute: false };
  if (!writer.admin) return { ok: false, status: 403, reason: `only Administrators may change ${admin.join(', ')}` };
  for (const f of ['odometer_correction_km', 'engine_hours_correction']) {
    const v = payload[f];
    if (
      v !== undefined &&
      v !== null &&
      !(typeof v === 'number' || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))))
    ) {
      return { ok: false, status: 400, reason: `${f} must be a number` };
    }
  }
  const override = payload.history_settings;
  if (override !== undefined && override !== null) {
    const value = typeof override === 'string' ? safeJson(override) : override;
    const parsed = SettingsOverrideSchema.safeParse(value);
    if (!parsed.success) return { ok: false, status: 400, reason: `history_settings: ${describe(parsed.error)}` };
  }
  return { ok: true, payload, recompute: true };
}

/** A fleet_settings create/update: Administrators only, each value valid. */
export function fleetSettingsWrite(payload: Record<string, unknown>, writer: Writer): WriteDecision {
  if (!writer.admin)
    return { ok: false, status: 403, reason: 'only Administrators may change the fleet detection settings' };
  const byColumn = Object.fromEntries(Object.entries(SETTING_COLUMNS).map(([k, c]) => [c, k]));
  const picked: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(payload)) {
    const key = byColumn[column];
    if (key === undefined || value === null) continue;
    picked[key] =
      typeof value === 'string' && column !== 'motion_source' && column !== 'time_zone' ? Number(value) : value;
  }
  const parsed = DetectionSettingsSchema.partial().safeParse(picked);
  if (!parsed.success) return { ok: false, status: 400, reason: describe(parsed.error) };
  return { ok: true, payload, recompute: false };
}

/** Days of history a detection-settings change recomputes: HISTORY_RECOMPUTE_DAYS, default 31. */
export function recomputeDays(v: unknown): number {
  const n = v === undefined || v === null || v === '' ? 31 : Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 3660 ? n : 31;
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
}

function describe(err: { issues: { path: PropertyKey[]; message: string }[] }): string {
  return err.issues.map((i) => `${i.path.map(String).join('.') || 'value'}: ${i.message}`).join('; ');
}
