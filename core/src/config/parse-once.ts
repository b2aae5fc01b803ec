import type { z } from 'zod';

/**
 * Parse options for a value parsed once (the settings, each section's defaults, a plugin's settings, a manifest
 * document read from a folder). zod compiles a fast path for an object schema on its first parse (generated code,
 * through `new Function`), which pays off only for a schema parsed many times in a hot loop; for these, compiling it
 * costs more start-up CPU than the generic path, and a folder of 3,000 objects loads no slower without it
 * (docs/benchmarks.md, "Start-up"). The result is the same either way.
 */
export const PARSED_ONCE: z.core.ParseContext<z.core.$ZodIssue> = Object.freeze({ jitless: true });
