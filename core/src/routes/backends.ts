import { isIPv4, isIPv6 } from 'node:net';
import type { V1EndpointSlice, V1Service, V1ServicePort } from '@kubernetes/client-node';
import { SERVICE_NAME_LABEL, snapshotKey } from './snapshot.js';
import type { Diagnostic, Endpoint, ServiceBackend } from './types.js';

/**
 * Resolves `Service + port` to endpoints from the Service's EndpointSlices, and caches the result per Service
 * until the Service or one of its slices changes.
 *
 *  - The Ingress names the Service port by number or by name; the Service port's name (`''` for an unnamed
 *    single port) selects the EndpointSlice port of the same name, which gives the target port.
 *  - Endpoints are ready when `conditions.ready` is true or unset and they are not terminating. Endpoints that
 *    are terminating but still serving are used only when no ready one exists.
 *  - Addresses are de-duplicated across slices (a ready copy wins) and sorted by `address:port`.
 */

/** A failed resolution: why, and which part of the backend reference is at fault. */
interface BackendProblem {
  readonly ok: false;
  readonly reason: 'ServiceNotFound' | 'ServicePortNotFound' | 'UnsupportedBackend';
  readonly message: string;
  /** Sub-field of the backend reference (`service.name` or `service.port`). */
  readonly field: 'service.name' | 'service.port';
  readonly noEndpoints?: undefined;
}

export interface BackendFound {
  readonly ok: true;
  readonly backend: ServiceBackend;
  /** Why there is no endpoint, when `backend.endpoints` is empty. */
  readonly noEndpoints?: string | undefined;
}

export type BackendResult = BackendFound | BackendProblem;

/** A backend port reference: a port number, or a port name. Values are checked by the caller. */
export type PortRef = number | string;

interface ServiceEntry {
  readonly service: V1Service | undefined;
  /** Keyed by port number or port name (a number and a string never collide as Map keys). */
  readonly ports: Map<PortRef, BackendResult>;
  /** Problems of the slices themselves (bad addresses, unsupported address types); reported once. */
  readonly diagnostics: Diagnostic[];
}

export class BackendResolver {
  /** Slices per Service key, kept up to date incrementally by {@link setSlice}. */
  readonly #slicesByService = new Map<string, Map<string, V1EndpointSlice>>();
  readonly #serviceOfSlice = new Map<string, string>();
  /** Namespace → Service name → entry (two lookups on existing strings instead of building a key per call). */
  readonly #entries = new Map<string, Map<string, ServiceEntry>>();

  /**
   * Records a slice added, changed (`slice` set) or deleted (`slice` undefined) and returns the keys of the
   * Services whose endpoints may have changed (the old and the new owner).
   */
  setSlice(key: string, slice: V1EndpointSlice | undefined): string[] {
    const affected: string[] = [];
    const previous = this.#serviceOfSlice.get(key);
    if (previous !== undefined) {
      const set = this.#slicesByService.get(previous);
      set?.delete(key);
      if (set?.size === 0) this.#slicesByService.delete(previous);
      this.#serviceOfSlice.delete(key);
      affected.push(previous);
    }
    const owner = slice ? sliceService(key, slice) : undefined;
    if (owner !== undefined && slice) {
      let set = this.#slicesByService.get(owner);
      if (!set) this.#slicesByService.set(owner, (set = new Map()));
      set.set(key, slice);
      this.#serviceOfSlice.set(key, owner);
      if (owner !== previous) affected.push(owner);
    }
    for (const service of affected) this.invalidate(service);
    return affected;
  }

  /** Drops the cached resolution of a Service (it changed). */
  invalidate(serviceKey: string): void {
    const slash = serviceKey.indexOf('/');
    this.#entries.get(serviceKey.slice(0, slash))?.delete(serviceKey.slice(slash + 1));
  }

  /** Forgets everything. */
  clear(): void {
    this.#slicesByService.clear();
    this.#serviceOfSlice.clear();
    this.#entries.clear();
  }

  /** Slice-level diagnostics of a Service that has been resolved, if any. */
  diagnosticsOf(serviceKey: string): readonly Diagnostic[] {
    const slash = serviceKey.indexOf('/');
    return this.#entries.get(serviceKey.slice(0, slash))?.get(serviceKey.slice(slash + 1))?.diagnostics ?? [];
  }

  /** Resolves a Service port to endpoints. The result object is cached and reused while nothing changed. */
  resolve(services: ReadonlyMap<string, V1Service>, namespace: string, name: string, port: PortRef): BackendResult {
    let inNamespace = this.#entries.get(namespace);
    if (!inNamespace) this.#entries.set(namespace, (inNamespace = new Map()));
    let entry = inNamespace.get(name);
    if (!entry) {
      const serviceKey = snapshotKey(namespace, name);
      entry = { service: services.get(serviceKey), ports: new Map(), diagnostics: [] };
      inNamespace.set(name, entry);
      if (entry.service) checkSlices(this.#slicesByService.get(serviceKey), entry.diagnostics);
    }
    let result = entry.ports.get(port);
    if (!result) {
      result = resolvePort(entry.service, namespace, name, port, this.#slicesByService.get(snapshotKey(namespace, name)));
      entry.ports.set(port, result);
    }
    return result;
  }
}

function sliceService(key: string, slice: V1EndpointSlice): string | undefined {
  const service = slice?.metadata?.labels?.[SERVICE_NAME_LABEL];
  if (typeof service !== 'string' || service === '') return undefined;
  const namespace = slice.metadata?.namespace || key.slice(0, key.indexOf('/'));
  return snapshotKey(namespace, service);
}

function resolvePort(service: V1Service | undefined, namespace: string, name: string, ref: PortRef, slices: ReadonlyMap<string, V1EndpointSlice> | undefined): BackendResult {
  const shown = `Service ${namespace}/${name}`;
  if (!service) return { ok: false, reason: 'ServiceNotFound', field: 'service.name', message: `${shown} not found` };
  const type = service.spec?.type;
  if (type === 'ExternalName') {
    return {
      ok: false,
      reason: 'UnsupportedBackend',
      field: 'service.name',
      message: `${shown} is of type ExternalName, which Warren does not route to (it balances over EndpointSlice addresses)`,
    };
  }
  const ports: V1ServicePort[] = Array.isArray(service.spec?.ports) ? service.spec!.ports : [];
  const tcp = ports.filter((p) => p && (p.protocol === undefined || p.protocol === 'TCP'));
  const wanted = typeof ref === 'number' ? `port ${ref}` : `port named "${ref}"`;
  const found = tcp.find((p) => (typeof ref === 'number' ? p.port === ref : p.name === ref));
  if (!found || !Number.isInteger(found.port) || found.port < 1 || found.port > 65535) {
    const listed = ports.map((p) => `${p?.name ? `${p.name}=` : ''}${p?.port}/${p?.protocol ?? 'TCP'}`).join(', ') || 'none';
    return { ok: false, reason: 'ServicePortNotFound', field: 'service.port', message: `${shown} has no TCP ${wanted} (ports: ${listed})` };
  }
  const portName = typeof found.name === 'string' ? found.name : '';
  const { endpoints, noEndpoints } = collectEndpoints(slices, portName, shown);
  const backend: ServiceBackend = Object.freeze({
    namespace,
    service: name,
    port: found.port,
    portName: portName || undefined,
    appProtocol: typeof found.appProtocol === 'string' && found.appProtocol !== '' ? found.appProtocol : undefined,
    endpoints,
  });
  return { ok: true, backend, noEndpoints };
}

function collectEndpoints(
  slices: ReadonlyMap<string, V1EndpointSlice> | undefined,
  portName: string,
  shown: string,
): { endpoints: readonly Endpoint[]; noEndpoints?: string } {
  const ready = new Map<string, Endpoint>();
  const serving = new Map<string, Endpoint>();
  let withPort = 0;
  for (const slice of slices?.values() ?? []) {
    const family = slice.addressType;
    if (family !== 'IPv4' && family !== 'IPv6') continue;
    const port = Array.isArray(slice.ports) ? slice.ports.find((p) => (p?.name ?? '') === portName) : undefined;
    const target = port?.port;
    if (typeof target !== 'number' || !Number.isInteger(target) || target < 1 || target > 65535) continue;
    withPort++;
    for (const ep of Array.isArray(slice.endpoints) ? slice.endpoints : []) {
      if (!ep || !Array.isArray(ep.addresses)) continue;
      const c = ep.conditions ?? {};
      const terminating = c.terminating === true;
      const isReady = c.ready !== false && !terminating;
      const isServing = terminating && (c.serving ?? c.ready ?? true) !== false;
      if (!isReady && !isServing) continue;
      for (const address of ep.addresses) {
        if (typeof address !== 'string' || !(family === 'IPv4' ? isIPv4(address) : isIPv6(address))) continue;
        const key = family === 'IPv6' ? `[${address}]:${target}` : `${address}:${target}`;
        const into = isReady ? ready : serving;
        if (into.has(key)) continue;
        into.set(
          key,
          Object.freeze({
            key,
            address,
            port: target,
            terminating: !isReady,
            podName: ep.targetRef?.kind === 'Pod' && typeof ep.targetRef.name === 'string' ? ep.targetRef.name : undefined,
            zone: typeof ep.zone === 'string' ? ep.zone : undefined,
          }),
        );
      }
    }
  }
  const chosen = ready.size > 0 ? ready : serving;
  const endpoints = Object.freeze([...chosen.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
  if (endpoints.length > 0) return { endpoints };
  const portShown = portName === '' ? 'the unnamed port' : `port "${portName}"`;
  if (!slices || slices.size === 0) return { endpoints, noEndpoints: `${shown} has no EndpointSlices` };
  if (withPort === 0) return { endpoints, noEndpoints: `no EndpointSlice of ${shown} lists ${portShown}` };
  return { endpoints, noEndpoints: `${shown} has no ready endpoints` };
}

/** Reports malformed slices of a Service once: unsupported address types and invalid addresses. */
function checkSlices(slices: ReadonlyMap<string, V1EndpointSlice> | undefined, into: Diagnostic[]): void {
  if (!slices) return;
  for (const [key, slice] of slices) {
    const family = slice.addressType;
    const namespace = slice.metadata?.namespace || key.slice(0, key.indexOf('/'));
    const objectRef = () => ({ kind: 'EndpointSlice' as const, namespace, name: slice.metadata?.name ?? key.slice(key.indexOf('/') + 1), uid: slice.metadata?.uid });
    if (family !== 'IPv4' && family !== 'IPv6') {
      const object = objectRef();
      into.push({
        type: 'Warning',
        reason: 'InvalidEndpoint',
        object,
        field: 'addressType',
        message: `EndpointSlice ${namespace}/${object.name}: addressType ${JSON.stringify(family)} is not supported (IPv4 or IPv6); slice ignored`,
      });
      continue;
    }
    const endpoints = Array.isArray(slice.endpoints) ? slice.endpoints : [];
    for (const [i, ep] of endpoints.entries()) {
      const addresses = Array.isArray(ep?.addresses) ? ep.addresses : [];
      for (const [j, address] of addresses.entries()) {
        if (typeof address === 'string' && (family === 'IPv4' ? isIPv4(address) : isIPv6(address))) continue;
        const object = objectRef();
        into.push({
          type: 'Warning',
          reason: 'InvalidEndpoint',
          object,
          field: `endpoints[${i}].addresses[${j}]`,
          message: `EndpointSlice ${namespace}/${object.name}: endpoints[${i}].addresses[${j}] ${JSON.stringify(address)} is not an ${family} address; address ignored`,
        });
      }
    }
  }
}
