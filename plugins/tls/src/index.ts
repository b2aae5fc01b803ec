import { definePlugin } from '@warren/core/plugin';
import { z } from 'zod';

/**
 * HTTPS upstreams: CA bundles, SNI and verify name, client certificates from Secrets, hot reload.
 * Placeholder manifest: the implementation lands with its issue.
 */
export default definePlugin({
  manifest: {
    id: 'upstream.tls',
    name: 'tls',
    description: 'HTTPS upstreams: CA bundles, SNI and verify name, client certificates from Secrets, hot reload.',
    coreRange: '^0.1.0',
    kind: 'transport',
    order: 10,
    enabledByDefault: true,
    protocols: ['https'],
  },
  configSchema: z.object({}).strict(),
  register() {},
});
