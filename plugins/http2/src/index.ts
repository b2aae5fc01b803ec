import { definePlugin } from '@warren/core/plugin';
import { z } from 'zod';

/**
 * HTTP/2 upstreams over TLS (ALPN) and cleartext h2c.
 * Placeholder manifest: the implementation lands with its issue.
 */
export default definePlugin({
  manifest: {
    id: 'upstream.http2',
    name: 'http2',
    description: 'HTTP/2 upstreams over TLS (ALPN) and cleartext h2c.',
    coreRange: '^0.1.0',
    kind: 'transport',
    order: 20,
    enabledByDefault: true,
    protocols: ['h2c', 'h2'],
  },
  configSchema: z.object({}).strict(),
  register() {},
});
