import { durationAnnotation, defineAnnotation, defineManifest, duration, parseDuration, type PluginConfig } from '@warren/core/plugin';
import { z } from 'zod';

const DAY = 86_400_000;

/** Config under `plugins.grpc`. */
const configSchema = z
  .object({
    defaultTimeout: z
      .union([z.string(), z.number()])
      .transform((v, ctx) => {
        const ms = parseDuration(v);
        if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'a duration such as "30s"' });
        return ms ?? 0;
      })
      .optional()
      .describe(
        'Deadline for calls whose client sent no grpc-timeout (default: none; streaming calls may rightly last for hours, the stream idle timeout bounds silent ones)',
      ),
    idleTimeout: duration()
      .refine((ms) => ms > 0 && ms <= DAY, 'a duration above 0 and at most 24h')
      .default(300_000)
      .describe('A call with no message (no byte) in either direction for this long is ended with DEADLINE_EXCEEDED and its upstream stream cancelled'),
  })
  .strict();

/** `warren.dev/grpc-default-timeout` (values apply to every route of the Ingress). */
export const GRPC_DEFAULT_TIMEOUT = defineAnnotation({
  key: 'grpc-default-timeout',
  description: 'Deadline for gRPC calls of these routes whose client sent no grpc-timeout (overrides plugins.grpc.defaultTimeout).',
  schema: durationAnnotation({ example: '30s', max: '24h' }),
  example: '30s',
});

/** `warren.dev/grpc-idle-timeout`. */
export const GRPC_IDLE_TIMEOUT = defineAnnotation({
  key: 'grpc-idle-timeout',
  description: 'A gRPC call of these routes with no message in either direction for this long is ended (overrides plugins.grpc.idleTimeout).',
  schema: durationAnnotation({ example: '10m', max: '24h' }),
  example: '10m',
});

/**
 * gRPC upstreams (`GRPC` over h2c, `GRPCS` over TLS): unary and streaming calls, trailers passed through,
 * `grpc-timeout` enforced as a deadline (DEADLINE_EXCEEDED), and gRPC statuses instead of HTTP errors when
 * Warren cannot reach the upstream (UNAVAILABLE).
 */
export const manifest = defineManifest({
  id: 'upstream.grpc',
  name: 'grpc',
  description: 'gRPC over HTTP/2 with trailers and gRPC status on errors.',
  coreRange: '^0.1.0',
  kind: 'protocol',
  order: 20,
  enabledByDefault: true,
  protocols: ['grpc', 'grpcs'],
  protocolTraits: { grpc: { http2: true }, grpcs: { http2: true, tls: true } },
  // A port named or marked `grpc-web` carries gRPC-Web, which is HTTP/1.1-compatible traffic, not gRPC.
  appProtocols: { grpc: 'grpc', 'grpc-web': 'http' },
  dependsOn: ['upstream.http2'],
  annotations: [GRPC_DEFAULT_TIMEOUT, GRPC_IDLE_TIMEOUT],
  configSchema,
});

export type GrpcConfig = PluginConfig<typeof manifest>;
