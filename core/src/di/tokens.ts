import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { InjectionToken } from 'tsyringe';
import type { CloudflareClientFactory } from '../cloudflare/client.js';
import type { Config } from '../config/schema.js';
import type { ControlPlugin } from '../plugin-api/control.js';
import type { EventSink, SecretReader } from '../plugin-api/lifecycle.js';
import type { PluginManifest } from '../plugin-api/manifest.js';
import type { UpstreamPlugin } from '../plugin-api/upstream.js';
import type { ExchangeHandler } from '../plugin-api/index.js';
import type { RouteStore } from '../routes/store.js';
import type { Published } from '../state/published.js';
import type { TunnelState } from '../state/tunnel.js';

/**
 * Injection tokens. `Symbol.for` with a `warren.` namespace so that tokens are the same symbol in every copy
 * of `@warren/core` a process loads. Plugins use only the tokens re-exported by `@warren/core/plugin`. Every token
 * is registered by the composition root (`core/src/composition/`) and read by Warren's own parts.
 */
export const token = <T>(name: string): InjectionToken<T> => Symbol.for(`warren.${name}`) as InjectionToken<T>;

export const TOKENS = {
  /** The frozen `Config`. */
  Config: token<Readonly<Config>>('Config'),
  /** Root pino logger. */
  Logger: token<Logger>('Logger'),
  /** Multi-token: data-plane plugins. */
  UpstreamPlugin: token<UpstreamPlugin>('UpstreamPlugin'),
  /** Multi-token: control plugins. */
  ControlPlugin: token<ControlPlugin>('ControlPlugin'),
  /** Manifests of every enabled plugin, sorted in chain order. */
  EnabledManifests: token<readonly PluginManifest[]>('EnabledManifests'),
  /** The current route table and its changes. */
  RouteStore: token<RouteStore>('RouteStore'),
  /** Secrets referenced by routes. */
  Secrets: token<SecretReader>('Secrets'),
  /** Kubernetes Events (log lines in folder mode). */
  Events: token<EventSink>('Events'),
  /** prom-client registry. */
  Metrics: token<Registry>('Metrics'),
  /** The proxy pipeline entry every acceptor hands its exchanges to. */
  ExchangeHandler: token<ExchangeHandler>('ExchangeHandler'),
  /** The tunnel's published state: id, replaced ids, registered connections. */
  TunnelState: token<Published<TunnelState>>('TunnelState'),
  /** Factory for the official `cloudflare` SDK client. */
  CloudflareClient: token<CloudflareClientFactory>('CloudflareClient'),
} as const;

/** Token under which a plugin's parsed settings are registered: `warren.plugin-config.<name>`. */
export function pluginConfigToken<T = unknown>(name: string): InjectionToken<T> {
  return Symbol.for(`warren.plugin-config.${name}`) as InjectionToken<T>;
}
