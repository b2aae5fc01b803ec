/**
 * The conformance run's data plane as on Cloudflare: Warren manages its tunnels through the fake Cloudflare API
 * (management mode), the edge simulator accepts exactly that account's live tunnels and opens an entrance per
 * tunnel on ENTRANCE_HOSTS, and the suite resolves each tunnel's `<tunnel-id>.cfargotunnel.com` — the address
 * Warren publishes for a Gateway — to that tunnel's entrance through a hosts file kept up to date as entrances open.
 */
import { type KubeConfig, type KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EdgeSimulator, type EdgeSimulatorOptions, type TunnelEntrance, tunnelHostname } from '../../../src/edge-simulator/index.js';
import type { FakeCloudflare } from '../../../src/testing/index.js';
import { render } from '../../chart/helm.js';
import { CONTROLLER_NAMESPACE, CONTROLLER_SERVICE_ACCOUNT } from '../../support/apiserver.js';

/** The entrance hosts scripts/in-test-netns.sh puts on the test namespace for this run: 198.18.2.2–198.18.2.81. */
export const ENTRANCE_HOSTS: readonly string[] = Array.from({ length: 80 }, (_, i) => `198.18.2.${i + 2}`);

/** An `authorize` for the edge simulator: the live (not deleted) tunnels of `accountId` in the fake API, by id and secret. */
export function liveTunnelsOf(fake: FakeCloudflare, accountId: string): NonNullable<EdgeSimulatorOptions['authorize']> {
  return (c) => c.accountTag === accountId && fake.tunnels(accountId).some((x) => !x.deletedAt && x.id === c.tunnelId && x.secret.equals(c.tunnelSecret));
}

/**
 * A hosts file: the machine's /etc/hosts, then `<entrance host> <tunnel-id>.cfargotunnel.com` for every entrance
 * of the simulator, rewritten in place (same inode, so a bind mount of it sees each version) when one opens.
 */
export class TunnelHostsFile {
  readonly path: string;
  readonly #base: string;
  readonly #edge: EdgeSimulator;
  readonly #onEntrance = () => this.#write();

  constructor(dir: string, edge: EdgeSimulator) {
    this.path = join(dir, 'hosts');
    this.#base = readFileSync('/etc/hosts', 'utf8').replace(/\n?$/, '\n');
    this.#edge = edge;
    this.#write();
    edge.on('entrance', this.#onEntrance);
  }

  /** The lines for the entrances, `<host> <tunnel hostname>`, in the order they opened. */
  static lines(entrances: readonly TunnelEntrance[]): string[] {
    return entrances.map((e) => `${e.host} ${tunnelHostname(e.tunnelId)}`);
  }

  #write(): void {
    // One write of the whole text: a reader sees the old or the new version, or an empty file for an instant.
    const entrances = TunnelHostsFile.lines(this.#edge.entrances);
    writeFileSync(this.path, `${this.#base}# tunnel entrances of the edge simulator\n${entrances.map((l) => `${l}\n`).join('')}`);
  }

  /** Stops following new entrances. */
  close(): void {
    this.#edge.off('entrance', this.#onEntrance);
  }
}

const RBAC_KINDS = new Set(['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

/**
 * Grants the controller's ServiceAccount (deploy/rbac.yaml, which covers token mode) what the chart adds for
 * management mode: the RBAC objects `helm template` renders with cloudflare.accountId and cloudflare.tunnelName
 * that it does not render (or renders differently) with a tunnel token, bound to that ServiceAccount. So the run
 * gets exactly the chart's rights, whatever management mode needs.
 */
export async function grantManagementModeRbac(admin: KubeConfig, cloudflare: { readonly accountId: string; readonly tunnelName: string }): Promise<string[]> {
  const options = { release: 'conformance', namespace: CONTROLLER_NAMESPACE };
  const rbac = async (values: Record<string, unknown>) =>
    (await render({ gateway: { enabled: true }, cloudflare: values }, options)).objects.filter((o) => RBAC_KINDS.has(o.kind));
  const tokenMode = new Map((await rbac({ tunnelToken: 'token-mode' })).map((o) => [`${o.kind}/${o.metadata.name}`, JSON.stringify(o)]));
  const added = (await rbac({ apiToken: 'management-mode', ...cloudflare })).filter((o) => tokenMode.get(`${o.kind}/${o.metadata.name}`) !== JSON.stringify(o));
  const objects = KubernetesObjectApi.makeApiClient(admin);
  for (const object of added) {
    const body = object.kind.endsWith('Binding')
      ? { ...object, subjects: [{ kind: 'ServiceAccount', name: CONTROLLER_SERVICE_ACCOUNT, namespace: CONTROLLER_NAMESPACE }] }
      : object;
    await objects.create(body as KubernetesObject);
  }
  return added.map((o) => `${o.kind}/${o.metadata.name}`);
}
