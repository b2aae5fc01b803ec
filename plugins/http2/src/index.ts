import { definePlugin, pluginConfigToken, TOKENS, type AnnotationSpec } from '@warren/core/plugin';
import { Lifecycle } from 'tsyringe';
import { z } from 'zod';
import { Http2Plugin } from './http2-plugin.js';

/** Settings under `plugins.http2`. */
export const http2ConfigSchema = z
  .object({
    maxConcurrentStreams: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(100)
      .describe('Streams per upstream HTTP/2 connection (the upstream\'s SETTINGS can only lower it); more requests open another connection or queue'),
  })
  .strict();
export type Http2Config = z.output<typeof http2ConfigSchema>;

const streams = z
  .string()
  .regex(/^\d{1,4}$/, 'a whole number from 1 to 1000')
  .transform(Number)
  .pipe(z.number().int().min(1, 'a whole number from 1 to 1000').max(1000, 'a whole number from 1 to 1000'));

/** Annotations this plugin owns (values apply to every route of the Ingress). */
export const HTTP2_ANNOTATIONS: readonly AnnotationSpec[] = [
  {
    key: 'upstream-max-concurrent-streams',
    description: 'Streams per upstream HTTP/2 connection for these routes (overrides plugins.http2.maxConcurrentStreams).',
    schema: streams,
    example: '50',
  },
];

export const HTTP2_CONFIG = pluginConfigToken<Http2Config>('http2');

/**
 * HTTP/2 to upstreams: over TLS negotiated by ALPN (`H2`, `GRPCS`, and `AUTO` upstreams that speak TLS) and
 * cleartext with prior knowledge (`H2C`, `GRPC`), with connection reuse and a per-connection stream limit.
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
    protocolTraits: { h2c: { http2: true }, h2: { http2: true, tls: true } },
    appProtocols: { 'kubernetes.io/h2c': 'h2c' },
    annotations: HTTP2_ANNOTATIONS,
  },
  configSchema: http2ConfigSchema,
  register(container, config) {
    container.register(HTTP2_CONFIG, { useValue: config });
    container.register(TOKENS.UpstreamPlugin, { useClass: Http2Plugin }, { lifecycle: Lifecycle.ContainerScoped });
  },
});

export { Http2Plugin };
