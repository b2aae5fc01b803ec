import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import { isIngressOwned } from '../../model/route-owner.js';
import type { EventObject, EventSink, ProvisionContext, SecretReader } from '../../plugin-api/lifecycle.js';
import type { IngressRef, Route, RouteOwnerKind, RouteTable } from '../../routes/types.js';

/**
 * An Ingress for a hand-built {@link RouteTable}: its hosts and its parsed `warren.dev/*` annotation values; with
 * `kind`, an HTTPRoute or GRPCRoute instead (not among the table's owned Ingresses, as the route builder makes it).
 */
export interface HandIngress {
  readonly kind?: RouteOwnerKind;
  readonly namespace: string;
  readonly name: string;
  readonly hosts: readonly string[];
  /** Parsed annotation values keyed without the prefix (what the route builder would put in `Route.annotations`). */
  readonly annotations?: Readonly<Record<string, unknown>>;
  readonly creationTimestamp?: string;
}

/**
 * Builds a RouteTable by hand (one `/` Prefix route per host) for tests of control plugins, which read only
 * `hosts`, `routes[].host`, `routes[].ingress` and `routes[].annotations`. `match` is a plain host lookup.
 */
export function handBuiltRouteTable(ingresses: readonly HandIngress[], generation = 1): RouteTable {
  const owned: IngressRef[] = [];
  const routes: Route[] = [];
  for (const ing of ingresses) {
    const gateway = !isIngressOwned(ing);
    const ref: IngressRef = {
      ...(gateway ? { kind: ing.kind } : {}),
      namespace: ing.namespace,
      name: ing.name,
      uid: gateway ? `uid-${ing.kind}-${ing.namespace}-${ing.name}` : `uid-${ing.namespace}-${ing.name}`,
      creationTimestamp: ing.creationTimestamp ?? '2026-01-01T00:00:00Z',
      generation: 1,
    };
    if (!gateway) owned.push(ref);
    ing.hosts.forEach((host, i) => {
      routes.push({
        id: gateway ? `${ing.kind}:${ing.namespace}/${ing.name}#r0/m${i}` : `${ing.namespace}/${ing.name}#${i}/0`,
        ingress: ref,
        host: host.toLowerCase(),
        path: '/',
        pathType: 'Prefix',
        backend: { namespace: ing.namespace, service: 'svc', port: 80, endpoints: [] },
        protocol: 'http',
        annotations: ing.annotations ?? {},
        secretRefs: [],
      });
    });
  }
  const hosts = [...new Set(routes.map((r) => r.host!))].sort();
  return {
    generation,
    routes,
    diagnostics: [],
    ownedIngresses: owned,
    hosts,
    match: (host) => routes.find((r) => r.host === host.toLowerCase().replace(/:\d+$/, '')),
  };
}

/** One event recorded by {@link RecordingEventSink}. */
export interface RecordedEvent {
  readonly type: 'Normal' | 'Warning';
  readonly object: EventObject;
  readonly reason: string;
  readonly message: string;
}

/** EventSink that keeps every event in memory (no deduplication, so tests can count). */
export class RecordingEventSink implements EventSink {
  readonly events: RecordedEvent[] = [];
  warning(object: EventObject, reason: string, message: string): void {
    this.events.push({ type: 'Warning', object, reason, message });
  }
  normal(object: EventObject, reason: string, message: string): void {
    this.events.push({ type: 'Normal', object, reason, message });
  }
  /** Warnings, optionally only those with `reason`. */
  warnings(reason?: string): RecordedEvent[] {
    return this.events.filter((e) => e.type === 'Warning' && (!reason || e.reason === reason));
  }
}

/** A pino logger at `trace` whose JSON lines are kept in memory, to assert on what was (not) logged. */
export function capturingLogger(): { readonly logger: Logger; text(): string; lines(): Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = pino({ level: 'trace' }, sink);
  return {
    logger,
    text: () => chunks.join(''),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const noSecrets: SecretReader = { get: () => undefined, onChange: () => () => undefined };

/** A ProvisionContext for control-plugin tests. */
export function testProvisionContext(options: { logger: Logger; events: EventSink; signal?: AbortSignal }): ProvisionContext {
  return { logger: options.logger, events: options.events, signal: options.signal ?? new AbortController().signal, secrets: noSecrets };
}
