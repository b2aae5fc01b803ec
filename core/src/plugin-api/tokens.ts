import type Cloudflare from 'cloudflare';
import type { Registry } from 'prom-client';
import type { InjectionToken } from 'tsyringe';
import type { PluginManifest } from './manifest.js';

/** `Symbol.for` with a `warren.` namespace, so that a token is the same symbol in every copy of `@warren/core` a process loads. */
export const token = <T>(name: string): InjectionToken<T> => Symbol.for(`warren.${name}`);

/** What a plugin class may inject besides its settings (`manifest.configToken`). */
export const TOKENS = Object.freeze({
  /** Makes a client of the official `cloudflare` SDK with the controller's API token, limits and metrics. */
  CloudflareClient: token<() => Cloudflare>('CloudflareClient'),
  /** The process's prom-client registry. Inject it with `{ isOptional: true }`: some hosts (tests) have none. */
  Metrics: token<Registry>('Metrics'),
  /** Manifests of every enabled plugin, in chain order: what protocols exist and how they travel (`protocolTraits`). */
  EnabledManifests: token<readonly PluginManifest[]>('EnabledManifests'),
});
