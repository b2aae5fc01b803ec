import type { RouteTable } from '../model/routes.js';
import type { ControlContext } from './control.js';
import type { PluginLifecycle } from './lifecycle.js';
import type { PluginManifest } from './manifest.js';
import type { UpstreamPlugin } from './upstream.js';

/**
 * How core holds enabled plugins once registered (`plugins/registry.ts`); not part of `@warren/core/plugin`.
 * Plugin classes never state their id: core pairs each instance with its manifest.
 */

/** An upstream plugin instance with the manifest it was registered from (`TOKENS.UpstreamPlugin`). */
export interface UpstreamPluginEntry {
  readonly plugin: UpstreamPlugin;
  readonly manifest: PluginManifest;
}

/**
 * A control plugin as core drives it (`TOKENS.ControlPlugin`): named by its manifest id, and taking an Ingress's
 * raw annotations in `needsFinalizer` (core parses them with the plugin's specs before the plugin sees them).
 */
export interface ControlPluginInstance extends PluginLifecycle {
  readonly id: string;
  onRoutesChanged(table: RouteTable, ctx: ControlContext): Promise<void>;
  onIngressDeleted?(ingress: { namespace: string; name: string; hosts: readonly string[] }, ctx: ControlContext): Promise<void>;
  needsFinalizer?(ingress: { namespace: string; name: string; annotations: Readonly<Record<string, string>> }): boolean;
}
