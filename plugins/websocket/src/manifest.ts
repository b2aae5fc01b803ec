import { durationAnnotation, defineAnnotation, defineManifest, duration, type PluginConfig } from '@warren/core/plugin';
import { z } from 'zod';

const _DAY = 86_400_000;

/** Config under `plugins.websocket`. */
const configSchema = z
  .object({
    idleTimeout: duration().default(3_600_000).describe('A WebSocket session with no bytes in either direction for this long is closed'),
  })
  .strict();

/** `warren.dev/websocket-idle-timeout` (values apply to every route of the Ingress). */
export const WEBSOCKET_IDLE_TIMEOUT = defineAnnotation({
  key: 'websocket-idle-timeout',
  description: 'Idle time after which a WebSocket session of these routes is closed (overrides idle-timeout and plugins.websocket.idleTimeout).',
  schema: durationAnnotation({ example: '30m', max: '24h' }),
  example: '2h',
});

/**
 * WebSocket: upgrade requests are forwarded (HTTP/1.1, with or without TLS), and after the upstream's 101 the
 * raw bytes are piped both ways until either side closes or the session idles out. Needs no annotation:
 * any route accepts upgrades; `backend-protocol`/`appProtocol` `ws`/`wss` only choose cleartext or TLS.
 */
export const manifest = defineManifest({
  id: 'upstream.websocket',
  name: 'websocket',
  description: 'WebSocket upgrades forwarded to the upstream, bytes piped both ways.',
  coreRange: '^0.1.0',
  kind: 'protocol',
  order: 10,
  enabledByDefault: true,
  protocols: ['ws', 'wss'],
  protocolTraits: { wss: { tls: true } },
  appProtocols: { 'kubernetes.io/ws': 'ws', 'kubernetes.io/wss': 'wss' },
  annotations: [WEBSOCKET_IDLE_TIMEOUT],
  configSchema,
});

export type WebsocketConfig = PluginConfig<typeof manifest>;
