import type { z } from 'zod';

/** Every Warren annotation key starts with this prefix. */
export const ANNOTATION_PREFIX = 'warren.dev/';

/**
 * Plugin kinds, in chain order. Within a kind, `order` then `id` decide; registration order never does.
 *  - `transport`: shapes the upstream connection (TLS, HTTP/2, keepalive pools)
 *  - `protocol`: speaks a protocol on the exchange (WebSocket, gRPC, SSE)
 *  - `policy`: wraps exchanges (headers, auth, limits); custom plugins are usually this kind
 *  - `control`: reacts to route tables outside the data plane (DNS, firewall)
 */
export const PLUGIN_KINDS = ['transport', 'protocol', 'policy', 'control'] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/**
 * An annotation a plugin (or core) owns: `warren.dev/<key>`. The value is parsed with `schema`; a value the
 * schema rejects skips the rule with an `InvalidAnnotation` Warning. The parsed value lands in
 * `Route.annotations[key]`.
 */
export interface AnnotationSpec<T = unknown> {
  /** Key without the prefix, kebab-case, e.g. `proxy-ssl-secret`. */
  readonly key: string;
  /** One sentence for the generated annotation reference. */
  readonly description: string;
  /** Parses the annotation's string value. Must not throw for any input; return a zod error instead. */
  readonly schema: z.ZodType<T, string>;
  /** Example value for docs. */
  readonly example: string;
  /** When set, the value names a Secret (`name` or `namespace/name`) that the Secret cache must keep. */
  readonly secretRef?: boolean;
}

/**
 * What a plugin declares about itself. Checked when the plugin is loaded, before any of its code runs:
 * `id` format and uniqueness, `coreRange` against core's version, `dependsOn` against the enabled set,
 * annotation keys and protocols against every other plugin.
 */
export interface PluginManifest {
  /** Namespaced, lower-case id: `<namespace>.<name>`, e.g. `upstream.websocket`, `cloud.dns`, `acme.request-id`. */
  readonly id: string;
  /** Settings key: the plugin's settings live under `plugins.<name>` (built-in) or `extraPlugins[].config`. */
  readonly name: string;
  readonly description: string;
  /** semver range of `@warren/core` the plugin works with, e.g. `^0.1.0`. */
  readonly coreRange: string;
  readonly kind: PluginKind;
  /** Position within its kind; lower runs first (outermost). */
  readonly order: number;
  /** Ids of plugins that must be enabled too. */
  readonly dependsOn?: readonly string[];
  /** Annotations this plugin owns. */
  readonly annotations?: readonly AnnotationSpec[];
  /** `warren.dev/backend-protocol` values (lower-case) this plugin serves, e.g. `['grpc', 'grpcs']`. */
  readonly protocols?: readonly string[];
  /** Service port `appProtocol` values this plugin serves, mapped to a backend protocol. */
  readonly appProtocols?: Readonly<Record<string, string>>;
  /** Whether a built-in plugin is on when the settings do not mention it. */
  readonly enabledByDefault?: boolean;
  /** Runs only on the elected leader (DNS, firewall). */
  readonly needsLeader?: boolean;
  /**
   * How the protocols in `protocols` travel, keyed by protocol (lower case). Core starts a route's connection
   * profile from them and guesses `AUTO` with them; a protocol not listed here is cleartext HTTP/1.1.
   */
  readonly protocolTraits?: Readonly<Record<string, ProtocolTraits>>;
}

/** What core and the transport plugins need to know of a backend protocol (see `PluginManifest.protocolTraits`). */
export interface ProtocolTraits {
  /** The upstream speaks TLS: routes start from a verified TLS profile (e.g. `https`, `grpcs`, `wss`). */
  readonly tls?: boolean;
  /** The protocol needs HTTP/2 (over TLS by ALPN, else cleartext with prior knowledge), e.g. `h2c`, `grpc`. */
  readonly http2?: boolean;
  /** Service ports `AUTO` takes for this protocol when the port name names none (443 and 8443 for `https`). */
  readonly ports?: readonly number[];
}
