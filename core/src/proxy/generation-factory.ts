import type { Logger } from 'pino';
import type { DependencyContainer } from 'tsyringe';
import type { Route, RouteTable } from '../routes/types.js';
import type { EndpointStates } from './balancer.js';
import { compileRoute, type CompiledRoute, type CompileEnv, type ProxyDefaults } from './compile.js';
import { coreDispatch } from './forward.js';
import { Generation } from './generation.js';
import { provisionPluginSet, type ProvisionServices } from './plugin-set.js';
import { GenerationPools } from './pool-references.js';
import { RouteCompilation } from './route-compilation.js';
import type { PoolRegistry } from './transport.js';

/** What generations are built from. */
export interface GenerationFactoryOptions {
  /** Root container with the enabled plugins registered; each plugin set is a child of it. */
  readonly container: DependencyContainer;
  readonly services: ProvisionServices;
  readonly logger: Logger;
  readonly pools: PoolRegistry;
  readonly defaults: ProxyDefaults;
  readonly states: EndpointStates;
}

/**
 * Assembles a generation: the predecessor's plugin set (or a new one provisioned and validated), its pool
 * references, and the compilation of its table. Routes compile later (see `route-compilation.ts`).
 */
export class GenerationFactory {
  readonly #options: GenerationFactoryOptions;
  /** Endpoint states left by the last prune (see #pruneStates). */
  #statesKept = 0;

  constructor(options: GenerationFactoryOptions) {
    this.#options = options;
  }

  /** Shares `predecessor`'s plugin set when given, else provisions a new one (rejects if a plugin fails). */
  async build(table: RouteTable, predecessor: Generation | undefined): Promise<Generation> {
    const { logger, defaults, states } = this.#options;
    const plugins = predecessor ? predecessor.plugins.use() : await provisionPluginSet(this.#options.container, this.#options.services, logger);
    const pools = new GenerationPools(this.#options.pools);
    const env: CompileEnv = {
      plugins: plugins.entries,
      defaults,
      states,
      coreDispatch,
      retainPool: (key, origin, profile, open) => pools.retain(key, origin, profile, open),
    };
    const compile = (route: Route): CompiledRoute => {
      const compiled = compileRoute(route, env);
      if (compiled.unavailable) logger.warn({ route: route.id, err: compiled.unavailable.message }, 'route unavailable');
      return compiled;
    };
    const onComplete = (): void => {
      // Every route now holds its own pools: let go of the predecessor's, and forget endpoints that left.
      pools.releaseCarried();
      this.#pruneStates(table);
    };
    const release = async (): Promise<void> => {
      await plugins.release(logger);
      pools.releaseAll();
    };
    return new Generation(table, plugins, pools, new RouteCompilation(table, pools, compile, onComplete), release);
  }

  /**
   * Drops the state of endpoints that left. A pass over every endpoint of the table costs (and allocates) as much
   * as the table, once per generation; a departed endpoint's state is a few numbers (an ejection it carries ends
   * within `EJECT_MAX_MS`), so the pass runs only once states could outnumber those kept by the last one.
   */
  #pruneStates(table: RouteTable): void {
    const states = this.#options.states;
    if (states.size <= 2 * this.#statesKept + 64) return;
    const live = new Set<string>();
    const routes = table.routes;
    for (let i = 0; i < routes.length; i++) {
      const endpoints = routes[i]!.backend.endpoints;
      for (let j = 0; j < endpoints.length; j++) live.add(endpoints[j]!.key);
    }
    states.prune(live);
    this.#statesKept = states.size;
  }
}
