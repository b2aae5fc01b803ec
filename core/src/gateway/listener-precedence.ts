import type { ListenerScope } from '../routes/types.js';
import { covers } from './attach.js';
import type { GatewayInfo, ListenerInfo } from './listeners.js';

/**
 * Which listener of a Gateway a request reaches, in the terms the route table checks per request
 * ({@link ListenerScope}). Among the listeners on the request's port whose hostname matches its host the most
 * specific takes it: an exact hostname, then the wildcard with the most labels after `*`, then a listener without
 * hostname (Gateway API listener precedence); only routes attached to that listener may answer.
 *
 * The port is the one the visitor used at Cloudflare's edge. The edge serves every proxied hostname over HTTPS on
 * 443 with its own certificate whatever the Gateway declares, so a Gateway without a listener on 443 receives its
 * HTTPS visitors there through its listeners on port 80, as if they had come over HTTP; once it has a listener on
 * 443, each port reaches only its own listeners.
 */

const HTTP_PORT = 80;
const HTTPS_PORT = 443;

/** The scope of listener `listener` of `gateway`: the ports and hosts it takes requests for. */
export function listenerScope(gateway: GatewayInfo, listener: ListenerInfo): ListenerScope {
  const served = (l: ListenerInfo) => l.attachable && l !== listener && l.port === listener.port;
  const ports = [listener.port];
  if (listener.port === HTTP_PORT && !gateway.listeners.some((l) => l.attachable && l.port === HTTPS_PORT)) ports.push(HTTPS_PORT);
  const yieldsTo: string[] = [];
  for (const other of gateway.listeners) {
    const h = other.hostname;
    if (!served(other) || h === undefined || yieldsTo.includes(h)) continue;
    // A hostname this listener's covers is more specific (an exact name, or a wildcard with more labels) and takes
    // the hosts it matches away from it; any hostname does from a listener without one.
    if (listener.hostname === undefined || covers(listener.hostname, h)) yieldsTo.push(h);
  }
  return Object.freeze({ name: listener.name, ports: Object.freeze(ports), hostname: listener.hostname, yieldsTo: Object.freeze(yieldsTo) });
}
