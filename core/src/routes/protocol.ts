import { AUTO_PROTOCOL } from './core-annotations.js';
import type { RoutingPlugins } from './plugins.js';
import type { BackendProtocol, ServiceBackend } from './types.js';

/**
 * Picks the upstream protocol of a route:
 *  1. `warren.dev/backend-protocol`, unless it is `AUTO`;
 *  2. the Service port's `appProtocol`, mapped by core (`kubernetes.io/h2c` → h2c, `kubernetes.io/ws` → ws,
 *     `kubernetes.io/wss` → wss, `https`, `grpc`, `http`) and by plugin manifests' `appProtocols`;
 *     an `appProtocol` nobody maps is ignored;
 *  3. with `AUTO` only: the Service port name, Istio-style `<protocol>` or `<protocol>-<suffix>` where protocol is
 *     one of http, https, h2c, h2, grpc, grpcs, ws, wss (`grpc-web` means http); then port 443 or 8443 → https;
 *  4. `http`.
 */
export function chooseProtocol(annotation: string | undefined, backend: ServiceBackend, plugins: RoutingPlugins): BackendProtocol {
  if (annotation !== undefined && annotation !== AUTO_PROTOCOL) return annotation as BackendProtocol;
  if (backend.appProtocol !== undefined) {
    const mapped = plugins.appProtocol(backend.appProtocol);
    if (mapped !== undefined) return mapped as BackendProtocol;
  }
  if (annotation === AUTO_PROTOCOL) return inferFromPort(backend.portName, backend.port);
  return 'http';
}

const NAMED: ReadonlySet<string> = new Set(['http', 'https', 'h2c', 'h2', 'grpc', 'grpcs', 'ws', 'wss']);

function inferFromPort(name: string | undefined, port: number): BackendProtocol {
  if (name) {
    const lower = name.toLowerCase();
    if (lower === 'grpc-web' || lower.startsWith('grpc-web-')) return 'http';
    const dash = lower.indexOf('-');
    const head = dash === -1 ? lower : lower.slice(0, dash);
    if (NAMED.has(head)) return head as BackendProtocol;
  }
  return port === 443 || port === 8443 ? 'https' : 'http';
}
