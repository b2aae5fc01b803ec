import { definePlugin } from '@warren/core/plugin';
import { z } from 'zod';

/**
 * Per-Ingress IP, CIDR and country allow and deny lists as zone WAF custom rules.
 * Placeholder manifest: the implementation lands with its issue.
 */
export default definePlugin({
  manifest: {
    id: 'cloud.firewall',
    name: 'firewall',
    description: 'Per-Ingress IP, CIDR and country allow and deny lists as zone WAF custom rules.',
    coreRange: '^0.1.0',
    kind: 'control',
    order: 20,
    enabledByDefault: false,
    needsLeader: true,
  },
  configSchema: z.object({}).strict(),
  register() {},
});
