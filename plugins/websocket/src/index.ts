import { definePlugin } from '@warren/core/plugin';
import { z } from 'zod';

/**
 * WebSocket upgrades forwarded to the upstream, bytes piped both ways.
 * Placeholder manifest: the implementation lands with its issue.
 */
export default definePlugin({
  manifest: {
    id: 'upstream.websocket',
    name: 'websocket',
    description: 'WebSocket upgrades forwarded to the upstream, bytes piped both ways.',
    coreRange: '^0.1.0',
    kind: 'protocol',
    order: 10,
    enabledByDefault: true,
    protocols: ['ws', 'wss'],
  },
  configSchema: z.object({}).strict(),
  register() {},
});
