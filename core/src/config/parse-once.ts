import type { z } from 'zod';

/**
 * Parse options for a value parsed once per process (the settings, each section's defaults, a plugin's settings).
 * zod compiles a fast path for an object schema on its first parse (generated code, through `new Function`),
 * which pays off only for a schema parsed many times; for a single parse, compiling it costs more than the generic
 * path (docs/benchmarks.md, "Start-up"). The result is the same either way.
 */
export const PARSED_ONCE: z.core.ParseContext<z.core.$ZodIssue> = Object.freeze({ jitless: true });
