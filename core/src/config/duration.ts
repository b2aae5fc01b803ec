import { z } from 'zod';

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const pattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;

/**
 * Parses a duration written as `500ms`, `15s`, `1.5m`, `2h` (one unit) or a bare number of milliseconds.
 * Returns milliseconds, or undefined when the text is not a duration.
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = pattern.exec(value.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * units[m[2]!]!);
}

/**
 * A zod type for durations in settings and annotations: accepts `"15s"`-style strings or milliseconds and
 * yields milliseconds. In the generated JSON schema it is a string or a non-negative number.
 */
export const duration = () =>
  z
    .union([z.string().regex(pattern, 'a duration such as "500ms", "15s", "2m" or "1h"'), z.number().nonnegative()])
    .transform((v) => parseDuration(v)!);
