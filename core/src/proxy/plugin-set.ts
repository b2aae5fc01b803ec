import type { Logger } from 'pino';
import { injectable, injectAll, type DependencyContainer } from 'tsyringe';
import { TOKENS } from '../di/tokens.js';
import type { EventSink, SecretReader } from '../plugin-api/lifecycle.js';
import type { UpstreamPluginEntry } from '../plugin-api/registered.js';
import { compareManifests } from '../plugins/registry.js';
import type { PluginEntry } from './compile.js';

/**
 * Plugin sets: the upstream plugin instances of a tsyringe child container of the root (fresh `ContainerScoped`
 * instances), provisioned and validated once and shared by consecutive generations while what they were
 * provisioned from stays the same. A set is disposed when the last generation using it is released.
 *
 * Plugins are registered at the root only (multi-token registrations in a child would shadow the root's list);
 * the child only scopes their instances.
 */

/** The plugin instances of one plugin set, resolved from its child container. */
@injectable()
export class PluginSetMembers {
  constructor(@injectAll(TOKENS.UpstreamPlugin, { isOptional: true }) readonly plugins: UpstreamPluginEntry[]) {}
}

/**
 * Plugin instances from one child container, provisioned and validated once, shared by consecutive generations.
 * Disposed (child container, provision signal aborted) when the last generation using it is released.
 */
export class PluginSet {
  #users = 0;

  constructor(
    readonly container: DependencyContainer,
    readonly entries: readonly PluginEntry[],
    readonly abort: AbortController,
  ) {}

  use(): this {
    this.#users++;
    return this;
  }

  /** Ends one generation's use; the last one disposes the instances. */
  async release(logger: Logger): Promise<void> {
    if (--this.#users > 0) return;
    this.abort.abort();
    try {
      await this.container.dispose();
    } catch (err) {
      logger.warn({ err }, 'a plugin failed to dispose');
    }
  }
}

/** What plugins are provisioned with. */
export interface ProvisionServices {
  /** Parent of each plugin's logger (`{plugin: id}` is added). */
  readonly logger: Logger;
  readonly secrets?: SecretReader | undefined;
  readonly events?: EventSink | undefined;
}

const NO_SECRETS: SecretReader = { get: () => undefined, onChange: () => () => {} };
const NO_EVENTS: EventSink = { warning: () => {}, normal: () => {} };

/**
 * A new plugin set, in use once: a child container of `root`, every plugin provisioned then validated. Disposed
 * again (and the error rethrown) if one fails.
 */
export async function provisionPluginSet(root: DependencyContainer, services: ProvisionServices, logger: Logger): Promise<PluginSet> {
  const plugins = new PluginSet(root.createChildContainer(), [], new AbortController()).use();
  try {
    const resolved = plugins.container.resolve(PluginSetMembers);
    const entries = sortPlugins(resolved.plugins);
    (plugins.entries as PluginEntry[]).push(...entries);
    for (const { plugin, manifest } of entries) {
      await plugin.provision?.({
        logger: services.logger.child({ plugin: manifest.id }),
        signal: plugins.abort.signal,
        secrets: services.secrets ?? NO_SECRETS,
        events: services.events ?? NO_EVENTS,
      });
    }
    for (const { plugin } of entries) await plugin.validate?.();
    return plugins;
  } catch (err) {
    await plugins.release(logger);
    throw err;
  }
}

/** Sorts registered plugins in chain order (kind, order, id). */
export function sortPlugins(plugins: readonly UpstreamPluginEntry[]): PluginEntry[] {
  return [...plugins].sort((a, b) => compareManifests(a.manifest, b.manifest));
}
