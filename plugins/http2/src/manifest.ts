import { defineAnnotation, defineManifest, type PluginConfig } from '@warren/core/plugin';
import { z } from 'zod';

/** Config under `plugins.http2`. */
const configSchema = z
  .object({
    maxConcurrentStreams: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(100)
      .describe("Streams per upstream HTTP/2 connection (the upstream's SETTINGS can only lower it); more requests open another connection or queue"),
  })
  .strict();

/** `warren.dev/upstream-max-concurrent-streams` (values apply to every route of the Ingress). */
export const MAX_CONCURRENT_STREAMS = defineAnnotation({
  key: 'upstream-max-concurrent-streams',
  description: 'Streams per upstream HTTP/2 connection for these routes (overrides plugins.http2.maxConcurrentStreams).',
  schema: z
    .string()
    .regex(/^\d{1,4}$/, 'a whole number from 1 to 1000')
    .transform(Number)
    .pipe(z.number().int().min(1, 'a whole number from 1 to 1000').max(1000, 'a whole number from 1 to 1000')),
  example: '50',
});

/**
 * HTTP/2 to upstreams: over TLS negotiated by ALPN (`H2`, `GRPCS`, and `AUTO` upstreams that speak TLS) and
 * cleartext with prior knowledge (`H2C`, `GRPC`), with connection reuse and a per-connection stream limit.
 */
export const manifest = defineManifest({
  id: 'upstream.http2',
  name: 'http2',
  description: 'HTTP/2 upstreams over TLS (ALPN) and cleartext h2c.',
  coreRange: '^0.1.0',
  kind: 'transport',
  order: 20,
  enabledByDefault: true,
  protocols: ['h2c', 'h2'],
  protocolTraits: { h2c: { http2: true }, h2: { http2: true, tls: true } },
  appProtocols: { 'kubernetes.io/h2c': 'h2c' },
  annotations: [MAX_CONCURRENT_STREAMS],
  configSchema,
});

export type Http2Config = PluginConfig<typeof manifest>;
