/**
 * kube-controller-manager for the rig, built by scripts/test-binaries.sh from the same Kubernetes version as
 * kube-apiserver and found next to it.
 *
 * It runs the controllers a workload needs ({@link RIG_CONTROLLERS}) and nothing else. Left off, and why:
 *  - cloud-node-lifecycle, service-lb, node-route: they need a cloud provider;
 *  - node-ipam: the rig's node hands out pod addresses itself (198.18.1.0/26 block), no pod CIDR is routed;
 *  - persistentvolume-*, attach-detach, ephemeral-volume, *-protection, selinux-warning: volumes need real nodes;
 *  - resourceclaim, device-taint-eviction: dynamic resource allocation needs device drivers on nodes;
 *  - the rest (jobs, cron jobs, stateful and daemon sets, autoscaling, quotas, certificates, TTLs, …): no test
 *    needs them yet, and every controller adds informers and CPU on a small machine. Add them with
 *    `extraControllers`.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { findTestBinaries, type TestApiServer } from '../apiserver.js';
import { spawnLogged, waitUntil, type LoggedChild } from '../../e2e/support/children.js';

export const RIG_CONTROLLERS: readonly string[] = [
  'deployment-controller',
  'replicaset-controller',
  'endpointslice-controller',
  'endpointslice-mirroring-controller',
  'namespace-controller',
  'garbage-collector-controller',
  'serviceaccount-controller',
  'serviceaccount-token-controller',
  'root-ca-certificate-publisher-controller',
  'node-lifecycle-controller',
  'taint-eviction-controller',
  'pod-garbage-collector-controller',
  'disruption-controller',
];

/** kube-controller-manager next to the kube-apiserver the tests use; a clear error when it is missing. */
export function findControllerManager(): string {
  const file = join(dirname(findTestBinaries().apiserver), 'kube-controller-manager');
  if (!existsSync(file)) throw new Error(`kube-controller-manager not found at ${file}; run "bash scripts/test-binaries.sh" or "npm test"`);
  return file;
}

export interface ControllerManagerOptions {
  readonly dir: string;
  readonly extraControllers?: readonly string[];
  /** Bound for start-up; default 60 s. */
  readonly readyTimeoutMs?: number;
}

/** Starts kube-controller-manager against `server` as a `system:masters` user and waits until it runs. */
export async function startControllerManager(server: TestApiServer, options: ControllerManagerOptions): Promise<LoggedChild> {
  const kubeconfig = join(options.dir, 'controller-manager.kubeconfig');
  writeFileSync(kubeconfig, server.adminConfig().exportConfig(), { mode: 0o600 });
  mkdirSync(join(options.dir, 'kube-controller-manager'), { recursive: true });
  const controllers = [...RIG_CONTROLLERS, ...(options.extraControllers ?? [])];
  const child = spawnLogged(
    'kube-controller-manager',
    findControllerManager(),
    [
      `--kubeconfig=${kubeconfig}`,
      `--controllers=${controllers.join(',')}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--use-service-account-credentials=false',
      `--service-account-private-key-file=${join(server.dir, 'sa.key')}`,
      `--root-ca-file=${join(server.dir, 'ca.crt')}`,
      '--kube-api-qps=100',
      '--kube-api-burst=200',
      '--concurrent-gc-syncs=5',
      '--v=2',
    ],
    { env: { PATH: process.env.PATH }, dir: join(options.dir, 'kube-controller-manager') },
  );
  // Controllers start together once their informers have synced; the root CA publisher's ConfigMap in
  // `default` is the first visible write, so its presence means the manager is up.
  const core = server.adminConfig().makeApiClient(CoreV1Api);
  try {
    await waitUntil(
      'kube-controller-manager to publish kube-root-ca.crt',
      async () => {
        if (child.exit) throw new Error(`kube-controller-manager exited:\n${child.tail()}`);
        return core.readNamespacedConfigMap({ namespace: 'default', name: 'kube-root-ca.crt' }).then(
          () => true,
          () => false,
        );
      },
      options.readyTimeoutMs ?? 60_000,
    );
  } catch (err) {
    const message = `${(err as Error).message}\n${child.tail()}`;
    await child.stop();
    throw new Error(message);
  }
  return child;
}
