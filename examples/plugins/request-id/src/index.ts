import { definePlugin } from '@warren/core/plugin';
import { z } from 'zod';

/** Worked example of a custom plugin; filled in with docs/writing-a-plugin.md. */
export default definePlugin({
  manifest: {
    id: 'example.request-id',
    name: 'request-id',
    description: 'Adds a request id header to every upstream request.',
    coreRange: '^0.1.0',
    kind: 'policy',
    order: 10,
  },
  configSchema: z.object({}).strict(),
  register() {},
});
