import { z } from 'zod';

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * The one duration syntax of settings and annotations: a non-negative number with one unit (`500ms`, `15s`,
 * `1.5m`, `2h`), or a bare number, which means milliseconds (`"250"` is `250ms`). Settings have always taken
 * numbers (YAML, `--set` and `WARREN_*` values are read as YAML scalars), so annotations take them the same way.
 */
export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;

/** What a duration looks like, for error messages. */
export const DURATION_HINT = 'a duration such as "500ms", "15s", "2m" or "1h" (a bare number means milliseconds)';

/**
 * Parses a duration (see {@link DURATION_PATTERN}). Returns milliseconds, or undefined when the value is not a
 * duration.
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const m = DURATION_PATTERN.exec(value.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * units[m[2] ?? 'ms']!);
}

/**
 * A zod type for durations in settings and annotations: accepts `"15s"`-style strings, bare numbers (as numbers
 * or strings) of milliseconds, and yields milliseconds. In the generated JSON schema it is a string or a
 * non-negative number.
 */
export const duration = () => z.union([z.string().trim().regex(DURATION_PATTERN, DURATION_HINT), z.number().nonnegative()]).transform((v) => parseDuration(v)!);

/**
 * Schema of a duration annotation value (`"30s"`, `"10m"`) parsed to milliseconds, above 0 (or 0 too, meaning off,
 * with `zeroIsOff`) and at most `max` (itself a duration such as `"24h"`). `example` goes into the message a user
 * reads when the value is refused.
 */
export function durationAnnotation(options: { readonly example: string; readonly max: string; readonly zeroIsOff?: boolean }): z.ZodType<number, string> {
  const max = parseDuration(options.max)!;
  const allowed = options.zeroIsOff ? `at most ${options.max} ("0s" = off)` : `above 0 and at most ${options.max}`;
  return z
    .string()
    .transform((v) => parseDuration(v) ?? Number.NaN)
    .refine((ms) => (options.zeroIsOff ? ms >= 0 : ms > 0) && ms <= max, `a duration such as "${options.example}", ${allowed}`);
}
