import type { TransportProfile } from '../plugin-api/upstream.js';
import type { PoolOpener, PoolRegistry } from './transport.js';

/**
 * Pool lifetimes: the references one generation holds on the shared {@link PoolRegistry}. A pool closes once no
 * generation holds it, so a route-table change keeps the kept-alive connections of every pool the new generation
 * still uses.
 */

/** A pool key a generation holds a reference on, with what the registry needs to re-create its entry. */
export interface HeldPool {
  readonly origin: string;
  readonly profile: TransportProfile;
  /** The plugin's pool opener when a plugin serves the route's protocol (see `UpstreamPlugin.createPool`). */
  readonly open?: PoolOpener | undefined;
}

export class GenerationPools {
  /** Pools held for the generation's compiled routes: one reference per distinct pool, however many routes share it. */
  readonly held = new Map<string, HeldPool>();
  /**
   * Pools taken over from the predecessor until the generation has compiled every route; otherwise retiring the
   * predecessor would close pools whose routes this generation simply has not compiled yet.
   */
  readonly carried = new Map<string, HeldPool>();

  constructor(readonly registry: PoolRegistry) {}

  /** Holds the pool a route being compiled uses. Returns the registry's copy of the key. */
  retain(key: string, origin: string, profile: TransportProfile, open?: PoolOpener): string {
    if (this.held.has(key)) return this.registry.canonical(key) ?? key;
    const canonical = this.registry.retain(key, origin, profile, open);
    this.held.set(canonical, { origin, profile, open });
    return canonical;
  }

  /** Holds the pools of compiled routes taken over from a predecessor. */
  holdAll(pools: Iterable<readonly [string, { readonly pool: HeldPool }]>): void {
    for (const [key, { pool }] of pools) {
      if (!this.held.has(key)) this.held.set(this.registry.retain(key, pool.origin, pool.profile, pool.open), pool);
    }
  }

  /** Takes a reference on every pool `previous` holds (its own and those it still carries). */
  carry(previous: GenerationPools): void {
    for (const source of [previous.held, previous.carried]) {
      for (const [key, pool] of source) {
        if (this.carried.has(key)) continue;
        this.carried.set(this.registry.retain(key, pool.origin, pool.profile, pool.open), pool);
      }
    }
  }

  /** Every route now holds its own pools: lets go of the predecessor's. */
  releaseCarried(): void {
    for (const key of this.carried.keys()) this.registry.release(key);
    this.carried.clear();
  }

  releaseAll(): void {
    for (const key of this.held.keys()) this.registry.release(key);
    this.held.clear();
    this.releaseCarried();
  }
}
