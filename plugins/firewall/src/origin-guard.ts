import { originRefusalCounter, type OriginRefusalCounter, type OriginRefusalReason } from '@warren/core';
import {
  ErrorCode,
  TOKENS,
  WarrenError,
  inject,
  injectable,
  routeOwnerKind,
  routeOwnerText,
  type Route,
  type RouteBinding,
  type UpstreamInterceptor,
  type UpstreamPlugin,
} from '@warren/core/plugin';
import { manifest } from './manifest.js';
import { compileOriginLists, refusalOf, type OriginLists } from './origin-lists.js';
import type { FirewallConfig } from './config.js';

/** A route's compiled lists and its refusal counters, one per reason. */
export interface OriginGuardOptions {
  readonly lists: OriginLists;
  /** `Ingress ns/name`, `HTTPRoute ns/name`: the object whose lists refused, for the access log. */
  readonly owner: string;
  readonly count: (reason: OriginRefusalReason) => void;
}

/**
 * The firewall's origin side, on every replica: requests to the routes of an Ingress with firewall lists are
 * checked against them in the proxy too, with what the edge states about the visitor, whether or not Cloudflare
 * holds the Ingress's rule (only the leader knows that, and a rule can disappear at any time: a hand edit, a plan
 * downgrade). Refused requests get 403 with a fixed body (`ErrorCode.Forbidden`), and count in
 * `warren_firewall_origin_refusals_total`; the access log names the reason. With `originEnforcement: block-only`,
 * Ingresses whose action is a challenge are left to the edge (the origin cannot challenge, and would refuse
 * visitors who passed one).
 */
@injectable()
export class FirewallOriginGuard implements UpstreamPlugin<OriginGuardOptions> {
  readonly #config: FirewallConfig;
  readonly #counter: OriginRefusalCounter | undefined;

  constructor(@inject(manifest.configToken) config: FirewallConfig, @inject(TOKENS.Metrics, { isOptional: true }) registry?: Parameters<typeof originRefusalCounter>[0]) {
    this.#config = config;
    this.#counter = registry ? originRefusalCounter(registry) : undefined;
  }

  bind(route: Route): RouteBinding<OriginGuardOptions> | undefined {
    const lists = compileOriginLists(route);
    if (!lists) return undefined;
    if (this.#config.originEnforcement === 'block-only' && lists.action !== 'block') return undefined;
    const { namespace, name } = route.ingress;
    const kind = routeOwnerKind(route.ingress);
    const counters = new Map<OriginRefusalReason, { inc(): void }>();
    const counter = this.#counter;
    const count = counter
      ? (reason: OriginRefusalReason) => {
          let child = counters.get(reason);
          if (!child) counters.set(reason, (child = counter({ namespace, kind, ingress: name, reason })));
          child.inc();
        }
      : () => undefined;
    return { route, options: { lists, owner: routeOwnerText(route.ingress), count } };
  }

  interceptor(binding: RouteBinding<OriginGuardOptions>): UpstreamInterceptor {
    const { lists, owner, count } = binding.options;
    return (next) =>
      function firewallLists(options, handler) {
        const refusal = refusalOf(lists, options.context.exchange.head);
        if (refusal === undefined) return next(options, handler);
        count(refusal);
        // The client sees a fixed sentence (Forbidden); the reason is for the access log.
        throw new WarrenError(ErrorCode.Forbidden, `refused by the firewall lists of ${owner} (${refusal})`);
      };
  }
}
