import { definePlugin } from '@warren/core/plugin';
import { z } from 'zod';

/**
 * Proxied CNAME records for Ingress hosts, with an ownership registry.
 * Placeholder manifest: the implementation lands with its issue.
 */
export default definePlugin({
  manifest: {
    id: 'cloud.dns',
    name: 'dns',
    description: 'Proxied CNAME records for Ingress hosts, with an ownership registry.',
    coreRange: '^0.1.0',
    kind: 'control',
    order: 10,
    enabledByDefault: false,
    needsLeader: true,
  },
  configSchema: z.object({}).strict(),
  register() {},
});
