import { definePlugin, duration, parseDuration, pluginConfigToken, TOKENS, type AnnotationSpec } from '@warren/core/plugin';
import { Lifecycle } from 'tsyringe';
import { z } from 'zod';
import { GrpcPlugin } from './grpc-plugin.js';

/** Settings under `plugins.grpc`. */
const DAY = 86_400_000;

export const grpcConfigSchema = z
  .object({
    defaultTimeout: z
      .union([z.string(), z.number()])
      .transform((v, ctx) => {
        const ms = parseDuration(v);
        if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'a duration such as "30s"' });
        return ms ?? 0;
      })
      .optional()
      .describe('Deadline for calls whose client sent no grpc-timeout (default: none; streaming calls may rightly last for hours, the stream idle timeout bounds silent ones)'),
    idleTimeout: duration()
      .refine((ms) => ms > 0 && ms <= DAY, 'a duration above 0 and at most 24h')
      .default(300_000)
      .describe('A call with no message (no byte) in either direction for this long is ended with DEADLINE_EXCEEDED and its upstream stream cancelled'),
  })
  .strict();
export type GrpcConfig = z.output<typeof grpcConfigSchema>;

/** Annotations this plugin owns (values apply to every route of the Ingress). */
export const GRPC_ANNOTATIONS: readonly AnnotationSpec[] = [
  {
    key: 'grpc-default-timeout',
    description: 'Deadline for gRPC calls of these routes whose client sent no grpc-timeout (overrides plugins.grpc.defaultTimeout).',
    schema: z
      .string()
      .transform((v) => parseDuration(v) ?? NaN)
      .refine((ms) => ms > 0 && ms <= DAY, 'a duration such as "30s", above 0 and at most 24h'),
    example: '30s',
  },
  {
    key: 'grpc-idle-timeout',
    description: 'A gRPC call of these routes with no message in either direction for this long is ended (overrides plugins.grpc.idleTimeout).',
    schema: z
      .string()
      .transform((v) => parseDuration(v) ?? NaN)
      .refine((ms) => ms > 0 && ms <= DAY, 'a duration such as "10m", above 0 and at most 24h'),
    example: '10m',
  },
];

export const GRPC_CONFIG = pluginConfigToken<GrpcConfig>('grpc');

/**
 * gRPC upstreams (`GRPC` over h2c, `GRPCS` over TLS): unary and streaming calls, trailers passed through,
 * `grpc-timeout` enforced as a deadline (DEADLINE_EXCEEDED), and gRPC statuses instead of HTTP errors when
 * Warren cannot reach the upstream (UNAVAILABLE).
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
    protocolTraits: { grpc: { http2: true }, grpcs: { http2: true, tls: true } },
    // Istio names gRPC-Web ports `grpc-web`: that is HTTP/1.1-compatible traffic, not gRPC.
    appProtocols: { grpc: 'grpc', 'grpc-web': 'http' },
    dependsOn: ['upstream.http2'],
    annotations: GRPC_ANNOTATIONS,
  },
  configSchema: grpcConfigSchema,
  register(container, config) {
    container.register(GRPC_CONFIG, { useValue: config });
    container.register(TOKENS.UpstreamPlugin, { useClass: GrpcPlugin }, { lifecycle: Lifecycle.ContainerScoped });
  },
});

export { GrpcPlugin };
export { parseGrpcTimeout } from './grpc-timeout.js';
