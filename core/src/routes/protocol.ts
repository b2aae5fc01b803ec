import type { PluginManifest, ProtocolTraits } from '../plugin-api/manifest.js';
import { AUTO_PROTOCOL } from './core-annotations.js';
import type { RoutingPlugins } from './plugins.js';
import type { BackendProtocol, ServiceBackend } from './types.js';

/** The one backend protocol core serves itself. */
export const HTTP_PROTOCOL = 'http';

/**
 * `appProtocol` values core maps without plugins' help (Kubernetes' standard value for plain HTTP and the IANA
 * service name). Plugins add theirs through `PluginManifest.appProtocols`.
 */
export const CORE_APP_PROTOCOLS: Readonly<Record<string, string>> = Object.freeze({
  http: HTTP_PROTOCOL,
  'kubernetes.io/http': HTTP_PROTOCOL,
});

const NO_TRAITS: ProtocolTraits = Object.freeze({});

/**
 * The backend protocols plugin manifests declare, with how each travels (`PluginManifest.protocolTraits`), the
 * Service `appProtocol` values and ports that name them. Core knows no protocol but `http`: everything else comes
 * from here, so a plugin adds a protocol by declaring it.
 */
export class ProtocolCatalog {
  readonly #traits = new Map<string, ProtocolTraits>([[HTTP_PROTOCOL, NO_TRAITS]]);
  readonly #appProtocols = new Map<string, string>(Object.entries(CORE_APP_PROTOCOLS));
  readonly #ports = new Map<number, string>();

  /**
   * @param enabled manifests of the enabled plugins: their claims and mappings win.
   * @param known manifests of plugins that exist but are disabled: their protocols are still recognised (so a
   *   route can name the plugin to enable) but never served.
   */
  constructor(enabled: readonly PluginManifest[], known: readonly PluginManifest[] = []) {
    const enabledIds = new Set(enabled.map((m) => m.id));
    const disabled = known.filter((m) => !enabledIds.has(m.id));
    for (const m of [...enabled, ...disabled]) {
      for (const protocol of m.protocols ?? []) {
        if (this.#traits.has(protocol)) continue;
        const traits = m.protocolTraits?.[protocol] ?? NO_TRAITS;
        this.#traits.set(protocol, traits);
        for (const port of traits.ports ?? []) if (!this.#ports.has(port)) this.#ports.set(port, protocol);
      }
    }
    for (const m of disabled) {
      for (const [app, p] of Object.entries(m.appProtocols ?? {})) if (!this.#appProtocols.has(app.toLowerCase())) this.#appProtocols.set(app.toLowerCase(), p);
    }
    for (const m of enabled) for (const [app, p] of Object.entries(m.appProtocols ?? {})) this.#appProtocols.set(app.toLowerCase(), p);
  }

  /** How `protocol` travels; undefined for a protocol no manifest declares. */
  traits(protocol: string): ProtocolTraits | undefined {
    return this.#traits.get(protocol);
  }

  /** The backend protocol a Service port `appProtocol` maps to (case-insensitive), if any. */
  appProtocol(appProtocol: string): string | undefined {
    return this.#appProtocols.get(appProtocol.toLowerCase());
  }

  /**
   * `AUTO` without a mapped `appProtocol`: the Service port name, `<protocol>` or `<protocol>-<suffix>`
   * (the longest leading part that is a declared protocol or a mapped `appProtocol` value, so `grpc-web` can mean
   * something else than `grpc`); then a port some protocol declares (443 and 8443 for `https`); else `http`.
   */
  infer(portName: string | undefined, port: number): BackendProtocol {
    if (portName) {
      const lower = portName.toLowerCase();
      for (let end = lower.length; end > 0; end = lower.lastIndexOf('-', end - 1)) {
        const head = lower.slice(0, end);
        const protocol = this.#traits.has(head) ? head : this.#appProtocols.get(head);
        if (protocol !== undefined) return protocol;
      }
    }
    return this.#ports.get(port) ?? HTTP_PROTOCOL;
  }

  /** The protocol `AUTO` stands for on `backend`, or `protocol` itself. */
  resolve(protocol: BackendProtocol, backend: Pick<ServiceBackend, 'portName' | 'port'>): BackendProtocol {
    return protocol === AUTO_PROTOCOL ? this.infer(backend.portName, backend.port) : protocol;
  }
}

/**
 * Picks the upstream protocol of a route:
 *  1. `warren.dev/backend-protocol`, unless it is `AUTO`;
 *  2. the Service port's `appProtocol`, mapped by core (`http`, `kubernetes.io/http`) and by plugin manifests'
 *     `appProtocols`; an `appProtocol` nobody maps is ignored;
 *  3. with `AUTO` only: {@link ProtocolCatalog.infer} (port name, then well-known port);
 *  4. `http`.
 */
export function chooseProtocol(annotation: string | undefined, backend: ServiceBackend, plugins: Pick<RoutingPlugins, 'protocols'>): BackendProtocol {
  const protocols = plugins.protocols;
  if (annotation !== undefined && annotation !== AUTO_PROTOCOL) return annotation;
  if (backend.appProtocol !== undefined) {
    const mapped = protocols.appProtocol(backend.appProtocol);
    if (mapped !== undefined) return mapped;
  }
  if (annotation === AUTO_PROTOCOL) return protocols.infer(backend.portName, backend.port);
  return HTTP_PROTOCOL;
}
