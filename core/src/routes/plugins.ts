import { z } from 'zod';
import type { AnnotationSpec, PluginManifest } from '../plugin-api/manifest.js';
import { AUTO_PROTOCOL, CORE_ANNOTATIONS, CORE_PROTOCOL_VALUES } from './core-annotations.js';
import { HTTP_PROTOCOL, ProtocolCatalog } from './protocol.js';

/** Core's annotation naming the backend protocol, whose values the plugins' manifests decide. */
const PROTOCOL_ANNOTATION = 'backend-protocol';

/**
 * What the route builder needs to know about plugins: which `warren.dev/*` annotations exist and who parses
 * them, which backend protocols are served, and which Service `appProtocol` values map to which protocol.
 *
 * Built from the manifests of the enabled plugins plus, optionally, the manifests of built-in plugins that are
 * known but disabled: those only improve messages ("owned by plugin upstream.tls, which is disabled",
 * "enable plugin upstream.grpc") and never make an annotation or protocol usable.
 */
export class RoutingPlugins {
  readonly #annotations = new Map<string, { spec: AnnotationSpec; owner: string }>();
  readonly #disabledAnnotations = new Map<string, string>();
  /** Protocol → id of the enabled plugin serving it (`core` for http). */
  readonly #protocols = new Map<string, string>([[HTTP_PROTOCOL, 'core']]);
  readonly #disabledProtocols = new Map<string, string>();
  /** Every protocol the enabled and known manifests declare, with how it travels and what names it. */
  readonly protocols: ProtocolCatalog;

  /**
   * @param enabled manifests of the enabled plugins (`TOKENS.EnabledManifests`); assumed already checked by
   *   `checkPlugins` (no duplicate keys or protocols).
   * @param known manifests of other plugins that exist but are disabled (typically every built-in plugin, see
   *   {@link loadBuiltinManifests}); entries whose id is enabled are ignored.
   */
  constructor(enabled: readonly PluginManifest[], known: readonly PluginManifest[] = []) {
    for (const spec of CORE_ANNOTATIONS) this.#annotations.set(spec.key, { spec, owner: 'core' });
    this.protocols = new ProtocolCatalog(enabled, known);
    const enabledIds = new Set(enabled.map((m) => m.id));
    for (const m of known) {
      if (enabledIds.has(m.id)) continue;
      for (const a of m.annotations ?? []) if (!this.#disabledAnnotations.has(a.key)) this.#disabledAnnotations.set(a.key, m.id);
      for (const p of m.protocols ?? []) if (!this.#disabledProtocols.has(p)) this.#disabledProtocols.set(p, `${m.id} (plugins.${m.name}.enabled)`);
    }
    for (const m of enabled) {
      for (const a of m.annotations ?? []) if (!this.#annotations.has(a.key)) this.#annotations.set(a.key, { spec: a, owner: m.id });
      for (const p of m.protocols ?? []) if (!this.#protocols.has(p)) this.#protocols.set(p, m.id);
    }
    this.#narrowProtocolAnnotation();
  }

  /**
   * Narrows core's `backend-protocol` schema (any protocol-like name) to the protocols that exist: core's, the
   * enabled plugins', and those of known but disabled plugins (those parse, then get `ProtocolUnavailable` naming
   * the plugin to enable). Anything else is an invalid value.
   */
  #narrowProtocolAnnotation(): void {
    const entry = this.#annotations.get(PROTOCOL_ANNOTATION);
    if (entry?.owner !== 'core') return;
    const known = new Set([...this.#protocols.keys(), ...this.#disabledProtocols.keys(), AUTO_PROTOCOL]);
    const shown = [...new Set([...CORE_PROTOCOL_VALUES.slice(0, 1), ...[...known].map((p) => p.toUpperCase()), ...CORE_PROTOCOL_VALUES.slice(1)])];
    const schema = (entry.spec.schema as z.ZodType<string, string>).pipe(z.string().refine((v) => known.has(v), { error: `one of ${shown.join(', ')} (case-insensitive)` }));
    this.#annotations.set(PROTOCOL_ANNOTATION, { spec: { ...entry.spec, schema }, owner: 'core' });
  }

  /** The spec and owner (`core` or a plugin id) of an annotation key without prefix, when it is usable. */
  annotation(key: string): { readonly spec: AnnotationSpec; readonly owner: string } | undefined {
    return this.#annotations.get(key);
  }

  /** Id of the disabled plugin that would own this annotation key, if any. */
  disabledAnnotationOwner(key: string): string | undefined {
    return this.#disabledAnnotations.get(key);
  }

  /** Every usable annotation key without prefix, sorted. */
  annotationKeys(): string[] {
    return [...this.#annotations.keys()].sort();
  }

  /** True when `protocol` is `http` or an enabled plugin's manifest claims it. */
  serves(protocol: string): boolean {
    return this.#protocols.has(protocol);
  }

  /** Id of what serves `protocol`: `core` for http, else the enabled plugin claiming it; undefined when none does. */
  protocolOwner(protocol: string): string | undefined {
    return this.#protocols.get(protocol);
  }

  /** The disabled plugin (id and its settings toggle) that would serve `protocol`, if any. */
  disabledProtocolOwner(protocol: string): string | undefined {
    return this.#disabledProtocols.get(protocol);
  }

  /** The backend protocol a Service port `appProtocol` maps to (case-insensitive), if any. */
  appProtocol(appProtocol: string): string | undefined {
    return this.protocols.appProtocol(appProtocol);
  }

  /** Parses an annotation value with the owner's schema; never throws. */
  static parse(spec: AnnotationSpec, value: string): { ok: true; value: unknown } | { ok: false; expected: string } {
    let result: z.ZodSafeParseResult<unknown>;
    try {
      result = (spec.schema as z.ZodType<unknown, string>).safeParse(value);
    } catch (err) {
      return { ok: false, expected: `a value the schema accepts (it failed: ${(err as Error).message})` };
    }
    if (result.success) return { ok: true, value: result.data };
    return { ok: false, expected: [...new Set(result.error.issues.map((i) => i.message))].join('; ') };
  }
}
