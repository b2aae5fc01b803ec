import type { KubernetesObject, V1Service } from '@kubernetes/client-node';
import type { BackendResolver } from './backends.js';
import type { RoutingPlugins } from './plugins.js';
import type { ClusterSnapshot } from './snapshot.js';
import type { Candidate } from './translate.js';
import type { Diagnostic } from './types.js';

/**
 * Route sources besides Ingress (the Gateway API translation) plug into the route builder through this seam, so
 * that `routes/` never imports them: their candidates join the Ingress candidates per host and go through the same
 * conflict resolution, the same table and the same matcher.
 */

/** A candidate route from another source, with what conflict resolution and precedence need. */
export interface SourcedCandidate extends Candidate {
  /** Creation time of the declaring object, ms since epoch (Infinity when unknown): older wins a tie. */
  readonly time: number;
  /** `Kind/namespace/name` of the declaring object: breaks a tie of `time` alphabetically. */
  readonly owner: string;
  /** Position of the rule (and match) inside its object: earlier wins a remaining tie. */
  readonly order: number;
}

/** What a source contributes to one build. */
export interface SourcedRoutes {
  readonly candidates: readonly SourcedCandidate[];
  /** Problems found, turned into Warning events on the objects they name. */
  readonly diagnostics: readonly Diagnostic[];
  /** Keys (`namespace/name`) of the Services the candidates reference, resolved or not. */
  readonly services: readonly string[];
}

/** What a source may read during a build. */
export interface RouteSourceContext {
  readonly services: ReadonlyMap<string, V1Service>;
  readonly resolver: BackendResolver;
  readonly plugins: RoutingPlugins;
}

/**
 * A pure translation of the snapshot's objects of some kinds into candidates. Called by the builder when any of
 * `kinds` changed in the snapshot, or a Service or EndpointSlice that the last result referenced changed.
 */
export interface RouteSource {
  /** Snapshot fields (`ClusterSnapshot.extra` keys) this source reads. */
  readonly kinds: readonly string[];
  translate(snapshot: ClusterSnapshot, context: RouteSourceContext): SourcedRoutes;
}

/** Objects of kinds the core snapshot does not name (the Gateway API kinds), by kind, then by snapshot key. */
export type ExtraObjects = ReadonlyMap<string, ReadonlyMap<string, KubernetesObject>>;
