import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { ExchangeHandler } from '../model/exchange.js';
import type { EventSink, SecretReader } from '../plugin-api/lifecycle.js';
import type { ControlPluginInstance, UpstreamPluginEntry } from '../plugin-api/registered.js';
import { TOKENS as PLUGIN_TOKENS, token } from '../plugin-api/tokens.js';

export { token };
import type { RouteStore } from '../routes/store.js';
import type { Published } from '../state/published.js';
import type { TunnelState } from '../state/tunnel.js';

/**
 * Injection tokens (see `plugin-api/tokens.ts` for how they are made; plugins use only the subset
 * `@warren/core/plugin` exports). Every token is registered by the composition root (`core/src/composition/`)
 * and read by Warren's own parts.
 */
export const TOKENS = {
  /** The frozen `Config`. */
  Config: token<Readonly<Config>>('Config'),
  /** Root pino logger. */
  Logger: token<Logger>('Logger'),
  /** Multi-token: data-plane plugin instances with their manifests (registered by `registerPlugins`). */
  UpstreamPlugin: token<UpstreamPluginEntry>('UpstreamPlugin'),
  /** Multi-token: control plugins (registered by `registerPlugins`). */
  ControlPlugin: token<ControlPluginInstance>('ControlPlugin'),
  /** Manifests of every enabled plugin, sorted in chain order. */
  EnabledManifests: PLUGIN_TOKENS.EnabledManifests,
  /** The current route table and its changes. */
  RouteStore: token<RouteStore>('RouteStore'),
  /** Secrets referenced by routes. */
  Secrets: token<SecretReader>('Secrets'),
  /** Kubernetes Events (log lines in folder mode). */
  Events: token<EventSink>('Events'),
  /** prom-client registry. */
  Metrics: PLUGIN_TOKENS.Metrics,
  /** The proxy pipeline entry every acceptor hands its exchanges to. */
  ExchangeHandler: token<ExchangeHandler>('ExchangeHandler'),
  /** The tunnel's published state: id, replaced ids, registered connections. */
  TunnelState: token<Published<TunnelState>>('TunnelState'),
  /** Factory for the official `cloudflare` SDK client. */
  CloudflareClient: PLUGIN_TOKENS.CloudflareClient,
} as const;
