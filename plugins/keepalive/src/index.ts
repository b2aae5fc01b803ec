import { definePlugin } from '@warren/core/plugin';
import { z } from 'zod';

/**
 * Pooled keep-alive connections per endpoint with limits and idle timeout.
 * Placeholder manifest: the implementation lands with its issue.
 */
export default definePlugin({
  manifest: {
    id: 'upstream.keepalive',
    name: 'keepalive',
    description: 'Pooled keep-alive connections per endpoint with limits and idle timeout.',
    coreRange: '^0.1.0',
    kind: 'transport',
    order: 30,
    enabledByDefault: true,
  },
  configSchema: z.object({}).strict(),
  register() {},
});
