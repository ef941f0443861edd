/**
 * Panel options the fleet panels share: a half-width integer field with a default and bounds
 * (refresh intervals, row limits, thresholds).
 */
export interface IntegerOptionSpec {
  default: number;
  min?: number;
  max?: number;
  note?: string;
}

export function integerOption(field: string, name: string, spec: IntegerOptionSpec) {
  const { default: defaultValue, note, ...bounds } = spec;
  return {
    field,
    name,
    type: 'integer' as const,
    schema: { default_value: defaultValue },
    meta: { width: 'half' as const, interface: 'input', ...(note ? { note } : {}), options: bounds },
  };
}

/** How often a panel reloads, in seconds. */
export const refreshOption = (defaultSeconds: number, maxSeconds: number, field = 'refreshSeconds') =>
  integerOption(field, 'Refresh every (s)', { default: defaultSeconds, min: 1, max: maxSeconds });
