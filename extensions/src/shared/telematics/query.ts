/** Pieces of the query-string schemas of the fleet endpoint (zod): every bad value is a message, never a throw. */
import { z } from 'zod';

/** An optional number within [min, max] given as text; '' or absent → `fallback`. */
export function numberParam<T extends number | undefined>(min: number, max: number, message: string, fallback: T) {
  return z
    .string(message)
    .optional()
    .transform((v, ctx): number | T => {
      if (v === undefined || v === '') return fallback;
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      }
      return n;
    });
}
