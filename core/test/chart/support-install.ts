/**
 * Helpers for helm-install.test.ts: the real `helm` (through helm.ts) pointed at the test kube-apiserver
 * (support/apiserver.ts) with an admin kubeconfig file, typed clients to read back what helm installed, and an
 * RBAC question ("may the controller's ServiceAccount do X?") answered by the API server itself.
 */
import {
  AppsV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CoreV1Api,
  NetworkingV1Api,
  PolicyV1Api,
  RbacAuthorizationV1Api,
  type V1ResourceAttributes,
} from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { TestApiServer } from '../support/apiserver.js';
import { helm, type HelmResult } from './helm.js';

/**
 * Writes a kubeconfig file (mode 0600, in the server's temp folder, removed with it) that authenticates as the
 * harness's `system:masters` user; returns its path.
 */
export function writeAdminKubeconfig(server: TestApiServer): string {
  const token = server.adminConfig().getCurrentUser()?.token;
  if (!token) throw new Error('the test apiserver gave no admin token');
  const file = join(server.dir, 'helm-admin.kubeconfig');
  const kubeconfig = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'warren-test', cluster: { server: server.url, 'certificate-authority-data': Buffer.from(server.caPem).toString('base64') } }],
    users: [{ name: 'warren-test-admin', user: { token } }],
    contexts: [{ name: 'warren-test', context: { cluster: 'warren-test', user: 'warren-test-admin' } }],
    'current-context': 'warren-test',
  };
  writeFileSync(file, stringify(kubeconfig), { mode: 0o600 });
  return file;
}

/** Runs helm against the test apiserver (`--kubeconfig` appended); never throws for a non-zero exit. */
export function helmOn(server: TestApiServer): (args: readonly string[]) => Promise<HelmResult> {
  const kubeconfig = writeAdminKubeconfig(server);
  return (args) => helm([...args, '--kubeconfig', kubeconfig]);
}

/** Admin clients for every kind the chart installs. */
export interface InstallClients {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly batch: BatchV1Api;
  readonly networking: NetworkingV1Api;
  readonly policy: PolicyV1Api;
  readonly rbac: RbacAuthorizationV1Api;
  readonly authorization: AuthorizationV1Api;
}

export function installClients(server: TestApiServer): InstallClients {
  const kc = server.adminConfig();
  return {
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    networking: kc.makeApiClient(NetworkingV1Api),
    policy: kc.makeApiClient(PolicyV1Api),
    rbac: kc.makeApiClient(RbacAuthorizationV1Api),
    authorization: kc.makeApiClient(AuthorizationV1Api),
  };
}

/** True when `read` fails with 404, false when it finds the object; any other failure is rethrown. */
export async function isAbsent(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return false;
  } catch (err) {
    if ((err as { code?: unknown }).code === 404) return true;
    throw err;
  }
}

/** Whether the API server's authorizer lets ServiceAccount `namespace/name` perform `attributes`. */
export async function serviceAccountMay(clients: InstallClients, namespace: string, name: string, attributes: V1ResourceAttributes): Promise<boolean> {
  const review = await clients.authorization.createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${namespace}:${name}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        resourceAttributes: attributes,
      },
    },
  });
  return review.status?.allowed === true;
}

/**
 * The value the chart's `checksum/config` annotation must have for a ConfigMap's config.yaml: the SHA-256 of the
 * rendered config, which the ConfigMap's block scalar stores with one trailing newline.
 */
export function configChecksum(configYaml: string): string {
  return createHash('sha256').update(configYaml.replace(/\n$/, '')).digest('hex');
}
