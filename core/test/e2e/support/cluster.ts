/** Reads of what the controller wrote to the apiserver, as an operator would check them (admin credentials). */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { AdminClients } from '../../support/apiserver.js';
import { createBackend } from '../../support/k8s-objects.js';
import type { EchoService } from './echo.js';

/** `status.loadBalancer.ingress[*]` of an Ingress as hostnames (or IPs). */
export async function statusAddresses(admin: AdminClients, namespace: string, name: string): Promise<string[]> {
  const ing = await admin.networking.readNamespacedIngressStatus({ namespace, name });
  return (ing.status?.loadBalancer?.ingress ?? []).map((e) => e.hostname ?? e.ip ?? '?');
}

/** Events whose involved object has this name, in this namespace. */
export async function eventsFor(admin: AdminClients, namespace: string, name: string): Promise<CoreV1Event[]> {
  const list = await admin.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items;
}

/**
 * Creates Service `echo.name` (port `servicePort`, default 80, named `portName` if given) and its EndpointSlice
 * listing every address of `echo` on the echo port.
 */
export function createEchoBackend(admin: AdminClients, namespace: string, echo: EchoService, options: { servicePort?: number; portName?: string } = {}): Promise<void> {
  return createBackend(admin, namespace, echo.name, echo.addresses, {
    port: options.servicePort ?? 80,
    targetPort: echo.port,
    ...(options.portName ? { portName: options.portName } : {}),
  });
}
