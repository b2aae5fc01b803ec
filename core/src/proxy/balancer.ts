import type { Endpoint } from '../routes/types.js';

/**
 * Endpoint choice. Endpoint state (outstanding requests, failures, ejection) lives in one {@link EndpointStates}
 * per pipeline, keyed by endpoint key, so it survives route-table generations: a request that started on an
 * old generation still counts against its endpoint in the new one.
 */

/** Mutable per-endpoint state. Generations hold direct references, so pruning the map never loses counts. */
export class EndpointState {
  outstanding = 0;
  failures = 0;
  ejectedUntil = 0;
  /** The address (or name) of `key` without its port and an IPv6 address's brackets. */
  readonly host: string;

  constructor(readonly key: string) {
    const colon = key.lastIndexOf(':');
    this.host = key.startsWith('[') ? key.slice(1, key.indexOf(']')) : colon < 0 ? key : key.slice(0, colon);
  }
}

/** Ejection after a connect failure: 500 ms, doubling per consecutive failure, at most 30 s. */
const EJECT_BASE_MS = 500;
const EJECT_MAX_MS = 30_000;

export class EndpointStates {
  readonly #states = new Map<string, EndpointState>();

  get(key: string): EndpointState {
    let state = this.#states.get(key);
    if (!state) {
      state = new EndpointState(key);
      this.#states.set(key, state);
    }
    return state;
  }

  /** Records a connect failure and ejects the endpoint for a growing period. */
  recordFailure(state: EndpointState, now = Date.now()): void {
    state.failures++;
    state.ejectedUntil = now + Math.min(EJECT_BASE_MS * 2 ** (state.failures - 1), EJECT_MAX_MS);
  }

  /** Records a successful exchange start: the endpoint is healthy again. */
  recordSuccess(state: EndpointState): void {
    if (state.failures !== 0) {
      state.failures = 0;
      state.ejectedUntil = 0;
    }
  }

  /** Drops idle state of endpoints no longer in use (called when a generation goes live). */
  prune(live: ReadonlySet<string>): void {
    for (const [key, state] of this.#states) {
      if (!live.has(key) && state.outstanding === 0) this.#states.delete(key);
    }
  }

  get size(): number {
    return this.#states.size;
  }
}

export type BalancingPolicy = 'least-request' | 'round-robin';

/**
 * Picks an endpoint of one backend. Ejected endpoints are skipped unless every candidate is ejected (then the
 * one whose ejection ends first is used: a guess beats a certain 503). `exclude` holds indexes already tried
 * by this exchange. Returns the index into `endpoints`, or -1 when no candidate is left.
 */
export interface Balancer {
  readonly endpoints: readonly Endpoint[];
  readonly states: readonly EndpointState[];
  pick(exclude?: ReadonlySet<number>): number;
}

export function createBalancer(policy: BalancingPolicy, endpoints: readonly Endpoint[], registry: EndpointStates): Balancer {
  const states = endpoints.map((e) => registry.get(e.key));
  return policy === 'round-robin' ? new RoundRobin(endpoints, states) : new LeastRequest(endpoints, states);
}

class LeastRequest implements Balancer {
  constructor(
    readonly endpoints: readonly Endpoint[],
    readonly states: readonly EndpointState[],
  ) {}

  pick(exclude?: ReadonlySet<number>): number {
    const states = this.states;
    const now = Date.now();
    let best = -1;
    let bestLoad = Infinity;
    let ties = 0;
    let fallback = -1;
    let fallbackUntil = Infinity;
    for (let i = 0; i < states.length; i++) {
      if (exclude?.has(i)) continue;
      const s = states[i]!;
      if (s.ejectedUntil > now) {
        if (s.ejectedUntil < fallbackUntil) {
          fallback = i;
          fallbackUntil = s.ejectedUntil;
        }
        continue;
      }
      if (s.outstanding < bestLoad) {
        best = i;
        bestLoad = s.outstanding;
        ties = 1;
      } else if (s.outstanding === bestLoad && Math.random() * ++ties < 1) {
        best = i;
      }
    }
    return best !== -1 ? best : fallback;
  }
}

class RoundRobin implements Balancer {
  #next = Math.floor(Math.random() * 1024);

  constructor(
    readonly endpoints: readonly Endpoint[],
    readonly states: readonly EndpointState[],
  ) {}

  pick(exclude?: ReadonlySet<number>): number {
    const n = this.states.length;
    const now = Date.now();
    let fallback = -1;
    let fallbackUntil = Infinity;
    for (let tries = 0; tries < n; tries++) {
      const i = this.#next++ % n;
      if (exclude?.has(i)) continue;
      const s = this.states[i]!;
      if (s.ejectedUntil <= now) return i;
      if (s.ejectedUntil < fallbackUntil) {
        fallback = i;
        fallbackUntil = s.ejectedUntil;
      }
    }
    return fallback;
  }
}
