import type { EventSink, SecretReader } from '../plugin-api/lifecycle.js';
import type { PluginManifest } from '../plugin-api/manifest.js';
import type { ControlPluginInstance, UpstreamPluginEntry } from '../plugin-api/registered.js';
import { TOKENS as PLUGIN_TOKENS, token } from '../plugin-api/tokens.js';

/**
 * Injection tokens (see `plugin-api/tokens.ts` for how they are made). Plugins use only the subset
 * `@warren/core/plugin` exports.
 */
export const TOKENS = {
  /** The frozen `Config`. */
  Config: token<unknown>('Config'),
  /** Root pino logger. */
  Logger: token<unknown>('Logger'),
  /** Multi-token: data-plane plugin instances with their manifests (registered by `registerPlugins`). */
  UpstreamPlugin: token<UpstreamPluginEntry>('UpstreamPlugin'),
  /** Multi-token: control plugins (registered by `registerPlugins`). */
  ControlPlugin: token<ControlPluginInstance>('ControlPlugin'),
  /** Manifests of every enabled plugin, sorted in chain order. */
  EnabledManifests: token<readonly PluginManifest[]>('EnabledManifests'),
  /** `RouteStore`: the current route table and its changes. */
  RouteStore: token<unknown>('RouteStore'),
  Secrets: token<SecretReader>('Secrets'),
  Events: token<EventSink>('Events'),
  /** prom-client `Registry`. */
  Metrics: PLUGIN_TOKENS.Metrics,
  /** `ExchangeHandler`: the proxy pipeline entry. */
  ExchangeHandler: token<unknown>('ExchangeHandler'),
  /** `TunnelInfo`: tunnel id and connection state. */
  TunnelInfo: token<unknown>('TunnelInfo'),
  /** Factory for the official `cloudflare` SDK client. */
  CloudflareClient: PLUGIN_TOKENS.CloudflareClient,
} as const;
