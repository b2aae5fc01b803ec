/**
 * A real cluster on one machine for end-to-end tests: etcd and kube-apiserver (../apiserver.ts),
 * kube-controller-manager with the controllers a workload needs (controller-manager.ts), and one node stand-in
 * that binds and runs pods as local processes on pod addresses 198.18.1.2–61 (node.ts, pod.ts, images.ts).
 *
 * Deployments roll, ReplicaSets make pods, the node starts them and reports readiness, the EndpointSlice
 * controller publishes them, and deleting a pod walks preStop → SIGTERM → grace period → gone.
 *
 * Pod addresses exist only inside the network namespace of scripts/test.sh. Share ONE rig per test file with
 * {@link useRig}; it stops everything in `test.after.always` (and the test worker's exit hook SIGKILLs whatever a
 * crash left).
 */
import { VersionApi } from '@kubernetes/client-node';
import type { TestFn } from 'ava';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoggedChild } from '../../e2e/support/children.js';
import { startApiServer, type StartOptions, type TestApiServer } from '../apiserver.js';
import { startControllerManager } from './controller-manager.js';
import { RigNode } from './node.js';

export { DEMO_ORIGIN_IMAGE } from './images.js';
export { RIG_CONTROLLERS } from './controller-manager.js';

export interface Rig {
  readonly server: TestApiServer;
  readonly controllerManager: LoggedChild;
  readonly node: RigNode;
  /** Milliseconds from the call to startRig until everything ran. */
  readonly startupMs: number;
  /** The last lines of the controller manager's and the node's logs, for failure messages. */
  tail(lines?: number): string;
  /**
   * For failure messages: the last `lines` lines that `keep` accepts (default all) of the output of every container
   * of every pod in `namespace`, including pods already gone.
   */
  podLogs(namespace: string, options?: { readonly lines?: number; readonly keep?: (line: string) => boolean }): string;
  /** Stops the node (and every pod process), the controller manager, the apiserver and etcd. Idempotent. */
  stop(): Promise<void>;
}

export interface RigOptions {
  readonly apiserver?: StartOptions;
  /** Controllers to run beyond RIG_CONTROLLERS. */
  readonly extraControllers?: readonly string[];
}

export async function startRig(options: RigOptions = {}): Promise<Rig> {
  const started = Date.now();
  // The ServiceAccount admission plugin (off in the plain test apiserver) gives every pod its token volume, as
  // in a real cluster; webhooks stay off.
  const server = await startApiServer({
    ...options.apiserver,
    extraArgs: ['--disable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook', ...(options.apiserver?.extraArgs ?? [])],
  });
  const dir = mkdtempSync(join(tmpdir(), 'warren-rig-'));
  let controllerManager: LoggedChild | undefined;
  let node: RigNode | undefined;
  const stop = async () => {
    await node?.stop();
    await controllerManager?.stop();
    await server.stop();
    if (!process.env.WARREN_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const kc = server.adminConfig();
    const version = await kc.makeApiClient(VersionApi).getCode();
    [controllerManager, node] = await Promise.all([
      startControllerManager(server, { dir, extraControllers: options.extraControllers }),
      RigNode.start({ kubeConfig: kc, dir, kubeletVersion: version.gitVersion }),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  const cm = controllerManager;
  const rigNode = node;
  let stopping: Promise<void> | undefined;
  return {
    server,
    controllerManager: cm,
    node: rigNode,
    startupMs: Date.now() - started,
    tail(lines = 40) {
      let nodeLog = '';
      try {
        nodeLog = readFileSync(rigNode.logFile, 'utf8').split('\n').slice(-lines).join('\n');
      } catch {
        nodeLog = '(no node log)';
      }
      return `${cm.tail(lines)}\n--- node (${rigNode.logFile}) ---\n${nodeLog}`;
    },
    podLogs(namespace, { lines = 40, keep = () => true } = {}) {
      const out: string[] = [];
      // The node gives each pod `<namespace>_<name>_<uid>/` and each container a folder with its output files.
      for (const pod of readdirSync(dir).filter((d) => d.startsWith(`${namespace}_`))) {
        for (const container of readdirSync(join(dir, pod), { withFileTypes: true }).filter((e) => e.isDirectory())) {
          for (const file of ['stdout.log', 'stderr.log']) {
            let text: string;
            try {
              text = readFileSync(join(dir, pod, container.name, file), 'utf8');
            } catch {
              continue;
            }
            const kept = text.split('\n').filter((l) => l !== '' && keep(l));
            if (kept.length > 0) out.push(`--- ${pod}/${container.name}/${file} ---`, ...kept.slice(-lines));
          }
        }
      }
      return out.join('\n');
    },
    stop: () => (stopping ??= stop()),
  };
}

/** Registers `serial.before`/`after.always` hooks that start one rig for the whole test file and stop it. */
export function useRig(test: TestFn, options: RigOptions = {}): () => Rig {
  let rig: Rig | undefined;
  test.serial.before(async () => {
    rig = await startRig(options);
  });
  test.after.always(async () => {
    await rig?.stop();
  });
  return () => {
    if (!rig) throw new Error('the rig did not start (see the before hook failure)');
    return rig;
  };
}
