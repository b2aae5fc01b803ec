import type { ControlContext, ControlPlugin } from '../plugin-api/control.js';
import type { ProvisionContext } from '../plugin-api/lifecycle.js';
import { ANNOTATION_PREFIX, type PluginManifest } from '../plugin-api/manifest.js';
import type { ControlPluginInstance } from '../plugin-api/registered.js';
import type { RouteTable } from '../model/routes.js';

/**
 * A control plugin as core drives it: named by its manifest's id, and handed an Ingress's annotations parsed by the
 * plugin's own specs (as on routes) when core asks whether it needs the finalizer. Every hook forwards to the plugin.
 */
export class HostedControlPlugin implements ControlPluginInstance {
  readonly id: string;
  /** The plugin's own instance. */
  readonly plugin: ControlPlugin;
  readonly #manifest: PluginManifest;

  constructor(manifest: PluginManifest, plugin: ControlPlugin) {
    this.id = manifest.id;
    this.plugin = plugin;
    this.#manifest = manifest;
  }

  provision(ctx: ProvisionContext): void | Promise<void> {
    return this.plugin.provision?.(ctx);
  }

  validate(): void | Promise<void> {
    return this.plugin.validate?.();
  }

  dispose(): void | Promise<void> {
    return this.plugin.dispose?.();
  }

  onRoutesChanged(table: RouteTable, ctx: ControlContext): Promise<void> {
    return this.plugin.onRoutesChanged(table, ctx);
  }

  async onIngressDeleted(ingress: { namespace: string; name: string; hosts: readonly string[] }, ctx: ControlContext): Promise<void> {
    await this.plugin.onIngressDeleted?.(ingress, ctx);
  }

  needsFinalizer(ingress: { namespace: string; name: string; annotations: Readonly<Record<string, string>> }): boolean {
    if (!this.plugin.needsFinalizer) return false;
    return this.plugin.needsFinalizer({ namespace: ingress.namespace, name: ingress.name, annotations: this.#parse(ingress.annotations) });
  }

  /** The plugin's own annotations that parse; a value its schema rejects is left out, as the route builder does. */
  #parse(raw: Readonly<Record<string, string>>): Readonly<Record<string, unknown>> {
    const values: Record<string, unknown> = {};
    for (const spec of this.#manifest.annotations ?? []) {
      const value = raw[ANNOTATION_PREFIX + spec.key];
      if (typeof value !== 'string') continue;
      try {
        const result = spec.schema.safeParse(value);
        if (result.success) values[spec.key] = result.data;
      } catch {
        // A schema that throws rejects the value.
      }
    }
    return Object.freeze(values);
  }
}
