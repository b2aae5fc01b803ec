import { definePlugin } from '@warren/core/plugin';
import { z } from 'zod';

/**
 * Server-sent events flushed event by event, exempt from the idle timeout.
 * Placeholder manifest: the implementation lands with its issue.
 */
export default definePlugin({
  manifest: {
    id: 'upstream.sse',
    name: 'sse',
    description: 'Server-sent events flushed event by event, exempt from the idle timeout.',
    coreRange: '^0.1.0',
    kind: 'protocol',
    order: 30,
    enabledByDefault: true,
  },
  configSchema: z.object({}).strict(),
  register() {},
});
