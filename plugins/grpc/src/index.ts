import { definePlugin } from '@warren/core/plugin';
import { z } from 'zod';

/**
 * gRPC over HTTP/2 with trailers and gRPC status on errors.
 * Placeholder manifest: the implementation lands with its issue.
 */
export default definePlugin({
  manifest: {
    id: 'upstream.grpc',
    name: 'grpc',
    description: 'gRPC over HTTP/2 with trailers and gRPC status on errors.',
    coreRange: '^0.1.0',
    kind: 'protocol',
    order: 20,
    enabledByDefault: true,
    protocols: ['grpc', 'grpcs'],
    dependsOn: ['upstream.http2'],
  },
  configSchema: z.object({}).strict(),
  register() {},
});
