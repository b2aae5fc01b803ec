/**
 * Reading the rig's cluster from tests: typed clients and bounded waits on pods and EndpointSlices.
 */
import { AppsV1Api, CoreV1Api, DiscoveryV1Api, type V1EndpointSlice, type V1Pod } from '@kubernetes/client-node';
import { waitUntil } from '../../e2e/support/children.js';
import type { Rig } from './index.js';

export interface RigClients {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly discovery: DiscoveryV1Api;
}

export function rigClients(rig: Rig): RigClients {
  const kc = rig.server.adminConfig();
  return { core: kc.makeApiClient(CoreV1Api), apps: kc.makeApiClient(AppsV1Api), discovery: kc.makeApiClient(DiscoveryV1Api) };
}

/** The pods of `app` (label `app=<app>`). */
export async function podsOf(clients: RigClients, namespace: string, app: string): Promise<V1Pod[]> {
  return (await clients.core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items;
}

export const isReady = (pod: V1Pod): boolean => pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

/** Every endpoint the EndpointSlice controller publishes for `service`, with its conditions. */
export async function endpointsOf(
  clients: RigClients,
  namespace: string,
  service: string,
): Promise<Array<{ address: string; ready: boolean; serving: boolean; terminating: boolean; pod?: string }>> {
  const slices: V1EndpointSlice[] = (await clients.discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` })).items;
  return slices.flatMap((s) =>
    (s.endpoints ?? []).map((e) => ({
      address: e.addresses[0]!,
      ready: e.conditions?.ready === true,
      serving: e.conditions?.serving === true,
      terminating: e.conditions?.terminating === true,
      pod: e.targetRef?.name,
    })),
  );
}

/** Waits until `service` has exactly `count` ready endpoints (and no other endpoint); returns their addresses. */
export async function waitForReadyEndpoints(clients: RigClients, namespace: string, service: string, count: number, timeoutMs = 30_000): Promise<string[]> {
  let addresses: string[] = [];
  await waitUntil(
    `${count} ready endpoints of ${namespace}/${service}`,
    async () => {
      const endpoints = await endpointsOf(clients, namespace, service);
      addresses = endpoints.filter((e) => e.ready).map((e) => e.address);
      return addresses.length === count && endpoints.length === count;
    },
    timeoutMs,
  );
  return addresses;
}

/** Waits until the Deployment's rollout is complete: every replica updated, available, and no old pod left. */
export async function waitForRollout(clients: RigClients, namespace: string, name: string, timeoutMs = 60_000): Promise<void> {
  await waitUntil(
    `rollout of ${namespace}/${name}`,
    async () => {
      const d = await clients.apps.readNamespacedDeployment({ namespace, name });
      const want = d.spec?.replicas ?? 1;
      const s = d.status ?? {};
      const pods = await podsOf(clients, namespace, name);
      return (
        (s.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
        (s.updatedReplicas ?? 0) === want &&
        (s.availableReplicas ?? 0) === want &&
        (s.replicas ?? 0) === want &&
        pods.length === want
      );
    },
    timeoutMs,
  );
}
