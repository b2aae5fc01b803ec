import { durationAnnotation, defineAnnotation, defineManifest, duration, type PluginConfig } from '@warren/core/plugin';
import { z } from 'zod';

const _HOUR = 3_600_000;

/** Config under `plugins.keepalive`. */
const configSchema = z
  .object({
    idleTimeout: duration().default(60_000).describe('How long an idle upstream connection is kept for reuse'),
    maxConnectionsPerEndpoint: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(128)
      .describe('Most connections open to one endpoint at a time; further requests wait (proxy.upstreamQueueTimeout, proxy.maxQueuedRequests)'),
  })
  .strict();

/** `warren.dev/upstream-keepalive-timeout` (values apply to every route of the Ingress). */
export const KEEPALIVE_TIMEOUT = defineAnnotation({
  key: 'upstream-keepalive-timeout',
  description: 'Idle time after which a pooled upstream connection is closed (overrides plugins.keepalive.idleTimeout).',
  schema: durationAnnotation({ example: '30s', max: '1h' }),
  example: '30s',
});

/** `warren.dev/upstream-keepalive-connections`. */
export const KEEPALIVE_CONNECTIONS = defineAnnotation({
  key: 'upstream-keepalive-connections',
  description: 'Most connections to one endpoint (overrides plugins.keepalive.maxConnectionsPerEndpoint).',
  schema: z
    .string()
    .regex(/^\d{1,4}$/, 'a whole number from 1 to 4096')
    .transform(Number)
    .pipe(z.number().int().min(1, 'a whole number from 1 to 4096').max(4096, 'a whole number from 1 to 4096')),
  example: '32',
});

/**
 * Pooled keep-alive connections per endpoint, with a per-endpoint connection limit and an idle timeout.
 * Without this plugin every HTTP/1.1 upstream request opens its own connection.
 */
export const manifest = defineManifest({
  id: 'upstream.keepalive',
  name: 'keepalive',
  description: 'Pooled keep-alive connections per endpoint with limits and idle timeout.',
  coreRange: '^0.1.0',
  kind: 'transport',
  order: 30,
  enabledByDefault: true,
  annotations: [KEEPALIVE_TIMEOUT, KEEPALIVE_CONNECTIONS],
  configSchema,
});

export type KeepaliveConfig = PluginConfig<typeof manifest>;
