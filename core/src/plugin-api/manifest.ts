import type { InjectionToken } from 'tsyringe';
import type { z } from 'zod';

/** Every Warren annotation key starts with this prefix. */
export const ANNOTATION_PREFIX = 'warren.dev/';

/**
 * Plugin kinds, in chain order. Within a kind, `order` then `id` decide; registration order never does. The kind
 * also says what the plugin class implements:
 *  - `transport`: shapes the upstream connection (TLS, HTTP/2, keepalive pools) — an `UpstreamPlugin`
 *  - `protocol`: speaks a protocol on the exchange (WebSocket, gRPC, SSE) — an `UpstreamPlugin`
 *  - `policy`: wraps exchanges (headers, auth, limits); custom plugins are usually this kind — an `UpstreamPlugin`
 *  - `control`: reacts to route tables outside the data plane (DNS, firewall), on the leader only — a `ControlPlugin`
 */
export const PLUGIN_KINDS = ['transport', 'protocol', 'policy', 'control'] as const;
export type PluginKind = (typeof PLUGIN_KINDS)[number];
/** The kinds whose class is an `UpstreamPlugin`. */
export type UpstreamKind = Exclude<PluginKind, 'control'>;

/** Anything that carries parsed Warren annotations: a `Route`, or the Ingress `ControlPlugin.needsFinalizer` gets. */
export interface Annotated {
  /** Parsed values keyed without the prefix; each one was produced by the schema of the annotation's owner. */
  readonly annotations: Readonly<Record<string, unknown>>;
}

/**
 * An annotation a plugin (or core) owns: `warren.dev/<key>`, made with {@link defineAnnotation}. The value is
 * parsed with `schema`; a value the schema rejects skips the rule with an `InvalidAnnotation` Warning.
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
  readonly secretRef?: boolean | undefined;
  /** The parsed value on a route (or Ingress), typed by `schema`; undefined when the Ingress does not set it. */
  get(target: Annotated): T | undefined;
}

/** Declares an annotation once: its key, docs and schema; the result reads the parsed value typed. */
export function defineAnnotation<T>(spec: {
  readonly key: string;
  readonly description: string;
  readonly schema: z.ZodType<T, string>;
  readonly example: string;
  readonly secretRef?: boolean;
}): AnnotationSpec<T> {
  const { key } = spec;
  return Object.freeze({
    ...spec,
    // The route builder stored exactly what `schema` produced under `key`.
    get: (target: Annotated) => target.annotations[key] as T | undefined,
  });
}

/**
 * What a plugin declares about itself. Checked when the plugin is loaded, before any of its code runs (see
 * `plugins/registry.ts`): `id` format and uniqueness, `kind`, `order`, `coreRange` against core's version,
 * `dependsOn` against the enabled set, annotation keys and protocols against every other plugin.
 */
export interface PluginManifest<K extends PluginKind = PluginKind> {
  /** Namespaced, lower-case id: `<namespace>.<name>`, e.g. `upstream.websocket`, `cloud.dns`, `acme.request-id`. */
  readonly id: string;
  /** Config key: the plugin's config lives under `plugins.<name>` (built-in) or `extraPlugins[].config`. */
  readonly name: string;
  readonly description: string;
  /** semver range of `@warren/core` the plugin works with, e.g. `^0.1.0`. */
  readonly coreRange: string;
  readonly kind: K;
  /** Position within its kind; lower runs first (outermost). */
  readonly order: number;
  /** Ids of plugins that must be enabled too. */
  readonly dependsOn?: readonly string[] | undefined;
  /** Annotations this plugin owns. */
  readonly annotations?: readonly AnnotationSpec[] | undefined;
  /** `warren.dev/backend-protocol` values (lower-case) this plugin serves, e.g. `['grpc', 'grpcs']`. */
  readonly protocols?: readonly string[] | undefined;
  /** Service port `appProtocol` values this plugin serves, mapped to a backend protocol. */
  readonly appProtocols?: Readonly<Record<string, string>> | undefined;
  /** Whether a built-in plugin is on when the config does not mention it. */
  readonly enabledByDefault?: boolean | undefined;
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

/** A manifest with the schema of the plugin's config and the token its class injects it through. */
export interface DeclaredManifest<K extends PluginKind = PluginKind, S extends z.ZodType = z.ZodType> extends PluginManifest<K> {
  /** Config schema (strict, defaults here and nowhere else). Core parses the config with it; `enabled` is removed first. */
  readonly configSchema: S;
  /** Core registers the parsed config under this token: `constructor(@inject(manifest.configToken) config: PluginConfig<typeof manifest>)`. */
  readonly configToken: InjectionToken<z.output<S>>;
}

/** The parsed config type of a declared manifest. */
export type PluginConfig<M extends { readonly configSchema: z.ZodType }> = z.output<M['configSchema']>;

/** Declares a plugin's identity once: the manifest and its config schema, with the typed config token. */
export function defineManifest<const K extends PluginKind, S extends z.ZodType>(manifest: PluginManifest<K> & { readonly configSchema: S }): DeclaredManifest<K, S> {
  // A private symbol: two plugins can never share it, whatever their names.
  const configToken: InjectionToken<z.output<S>> = Symbol(`warren.plugin-config.${manifest.id}`);
  return Object.freeze({ ...manifest, configToken });
}
