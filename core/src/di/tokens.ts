import type { InjectionToken } from 'tsyringe';

/**
 * Injection tokens. `Symbol.for` with a `warren.` namespace so that tokens are the same symbol in every copy
 * of `@warren/core` a process loads. Plugins use only the tokens re-exported by `@warren/core/plugin`.
 */
const token = <T>(name: string): InjectionToken<T> => Symbol.for(`warren.${name}`) as InjectionToken<T>;

export const TOKENS = {
  /** The frozen `Config`. */
  Config: token<unknown>('Config'),
  /** Root pino logger. */
  Logger: token<unknown>('Logger'),
  /** Multi-token: data-plane plugins (`UpstreamPlugin`). */
  UpstreamPlugin: token<unknown>('UpstreamPlugin'),
  /** Multi-token: control plugins (`ControlPlugin`). */
  ControlPlugin: token<unknown>('ControlPlugin'),
  /** Manifests of every enabled plugin (`PluginManifest[]`), sorted in chain order. */
  EnabledManifests: token<unknown>('EnabledManifests'),
  /** `RouteStore`: the current route table and its changes. */
  RouteStore: token<unknown>('RouteStore'),
  /** `SecretReader`. */
  Secrets: token<unknown>('Secrets'),
  /** `EventSink`. */
  Events: token<unknown>('Events'),
  /** prom-client `Registry`. */
  Metrics: token<unknown>('Metrics'),
  /** `ExchangeHandler`: the proxy pipeline entry. */
  ExchangeHandler: token<unknown>('ExchangeHandler'),
  /** `TunnelInfo`: tunnel id and connection state. */
  TunnelInfo: token<unknown>('TunnelInfo'),
  /** Factory for the official `cloudflare` SDK client (`() => Cloudflare`). */
  CloudflareClient: token<unknown>('CloudflareClient'),
} as const;

/** Token under which a plugin's parsed settings are registered: `warren.plugin-config.<name>`. */
export function pluginConfigToken<T = unknown>(name: string): InjectionToken<T> {
  return Symbol.for(`warren.plugin-config.${name}`) as InjectionToken<T>;
}
