import { KubeConfig, type RequestContext } from '@kubernetes/client-node';
import type { Dispatcher } from 'undici';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, WarrenError } from '../errors.js';

/** Files a pod's service account provides; their presence (with KUBERNETES_SERVICE_HOST) means "in cluster". */
const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * Loads the Kubernetes client configuration in the order the `kubernetes.kubeconfig` setting documents:
 *  1. the file named by the setting, when set;
 *  2. in-cluster: the pod's service account (KUBERNETES_SERVICE_HOST plus the mounted token);
 *  3. `$KUBECONFIG` (first file wins, others merged, as kubectl does);
 *  4. `~/.kube/config`.
 * Throws a terminal WarrenError naming what was tried when none is available.
 */
export function loadKubeConfig(settings: { readonly kubeconfig?: string | undefined }, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (settings.kubeconfig) {
      kc.loadFromFile(settings.kubeconfig);
    } else if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
      kc.loadFromCluster();
    } else if (env.KUBECONFIG || existsSync(join(homedir(), '.kube', 'config'))) {
      kc.loadFromDefault();
    } else {
      throw new Error('no kubeconfig setting, not running in a cluster, no $KUBECONFIG and no ~/.kube/config');
    }
  } catch (err) {
    throw new WarrenError(ErrorCode.ConfigInvalid, `cannot load the Kubernetes client configuration: ${(err as Error).message}`, {
      terminal: true,
      cause: err,
    });
  }
  if (!kc.getCurrentCluster()) {
    throw new WarrenError(ErrorCode.ConfigInvalid, 'the Kubernetes client configuration has no current cluster', { terminal: true });
  }
  return shareConnections(kc);
}

const shared = Symbol.for('warren.k8s.sharedDispatcher');

/**
 * Makes every request made through `kc` use one connection pool. The client library builds a new undici Agent
 * for each request, so each API call (a status write, a Lease renewal every 2 s, an Event) would open a fresh
 * TLS connection: a handshake of latency each time, and native memory that piles up. The TLS settings of one
 * KubeConfig never change (tokens travel in headers, refreshed per request), so the first Agent serves all.
 * Idempotent; returns `kc`.
 */
export function shareConnections(kc: KubeConfig): KubeConfig {
  const target = kc as KubeConfig & { [shared]?: true };
  if (target[shared]) return kc;
  target[shared] = true;
  const apply = kc.applySecurityAuthentication.bind(kc);
  let pool: Dispatcher | undefined;
  kc.applySecurityAuthentication = async (context: RequestContext): Promise<void> => {
    await apply(context);
    const created = context.getDispatcher();
    if (!created) return;
    pool ??= created;
    if (created !== pool) {
      context.setDispatcher(pool);
      void created.close().catch(() => undefined);
    }
  };
  return kc;
}
