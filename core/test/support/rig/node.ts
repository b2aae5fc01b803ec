/**
 * The rig's node stand-in: registers one Ready Node, keeps its Lease in `kube-node-lease` renewed (the heartbeat
 * the node lifecycle controller watches), binds every pending pod of the default scheduler to itself, and runs
 * the pods bound to it (see pod.ts).
 *
 * Binding is done here rather than by kube-scheduler: with one node there is no placement decision to make, and
 * the node uses the same `pods/binding` subresource the scheduler writes, so the apiserver sees the same
 * requests. Pods naming another `schedulerName` or another node are left alone.
 */
import {
  CoreV1Api,
  CoordinationV1Api,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type Informer,
  type KubeConfig,
  type ObjectCache,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { AddressPool } from './addresses.js';
import { RigPod, type PodHost } from './pod.js';

export interface RigNodeOptions {
  readonly kubeConfig: KubeConfig;
  /** Folder for the node's log and the containers' working directories. */
  readonly dir: string;
  /** Node name (default `rig-node`). */
  readonly name?: string;
  /** Kubernetes version the node reports as its kubelet's. */
  readonly kubeletVersion: string;
  /** Lease renewal period (default 5 s; the Lease lasts 40 s as a kubelet's does). */
  readonly heartbeatMs?: number;
}

const LEASE_NAMESPACE = 'kube-node-lease';
const LEASE_SECONDS = 40;
const DEFAULT_SCHEDULER = 'default-scheduler';

/** RFC 3339 with microseconds, as MicroTime fields want. */
const microTime = (d = new Date()) => d.toISOString().replace(/Z$/, '000Z');

export class RigNode {
  readonly name: string;
  readonly logFile: string;
  readonly #core: CoreV1Api;
  readonly #coordination: CoordinationV1Api;
  readonly #options: RigNodeOptions;
  readonly #addresses = new AddressPool();
  readonly #pods = new Map<string, RigPod>();
  readonly #binding = new Set<string>();
  #informer: (Informer<V1Pod> & ObjectCache<V1Pod>) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #apiServer: { host: string; port: string };

  private constructor(options: RigNodeOptions) {
    const server = new URL(options.kubeConfig.getCurrentCluster()!.server);
    this.#apiServer = { host: server.hostname, port: server.port || '443' };
    this.#options = options;
    this.name = options.name ?? 'rig-node';
    this.logFile = join(options.dir, 'node.log');
    this.#core = options.kubeConfig.makeApiClient(CoreV1Api);
    this.#coordination = options.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  /** Registers the node, starts its heartbeat and starts watching pods. */
  static async start(options: RigNodeOptions): Promise<RigNode> {
    const node = new RigNode(options);
    await node.#register();
    await node.#startInformer();
    return node;
  }

  /** The running pod `namespace/name`, if this node runs it. */
  pod(namespace: string, name: string): RigPod | undefined {
    for (const pod of this.#pods.values()) if (pod.name === `${namespace}/${name}`) return pod;
    return undefined;
  }

  /** Stops watching, stops every pod's processes (SIGTERM, then SIGKILL after 2 s) and frees their addresses. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    await this.#informer?.stop().catch(() => undefined);
    await Promise.all([...this.#pods.values()].map((p) => p.shutdown()));
    this.#pods.clear();
    this.#addresses.releaseAll();
  }

  log(message: string): void {
    appendFileSync(this.logFile, `${new Date().toISOString()} ${message}\n`);
  }

  async #register(): Promise<void> {
    const v = this.#options.kubeletVersion;
    const body: V1Node = {
      metadata: {
        name: this.name,
        labels: { 'kubernetes.io/hostname': this.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'node.kubernetes.io/instance-type': 'warren-rig' },
      },
    };
    await this.#core.createNode({ body });
    const now = new Date();
    const condition = (type: string, status: string, reason: string) => ({ type, status, reason, message: reason, lastHeartbeatTime: now, lastTransitionTime: now });
    const capacity = { cpu: '8', memory: '16Gi', pods: '110', 'ephemeral-storage': '100Gi' };
    await this.#core.patchNodeStatus(
      {
        name: this.name,
        body: {
          status: {
            conditions: [
              condition('Ready', 'True', 'KubeletReady'),
              condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory'),
              condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure'),
              condition('PIDPressure', 'False', 'KubeletHasSufficientPID'),
            ],
            addresses: [
              { type: 'InternalIP', address: '127.0.0.1' },
              { type: 'Hostname', address: this.name },
            ],
            capacity,
            allocatable: capacity,
            nodeInfo: {
              machineID: 'warren-rig',
              systemUUID: 'warren-rig',
              bootID: 'warren-rig',
              kernelVersion: 'rig',
              osImage: 'warren rig node',
              containerRuntimeVersion: 'rig://1',
              kubeletVersion: v,
              kubeProxyVersion: v,
              operatingSystem: 'linux',
              architecture: 'amd64',
            },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await this.#coordination.createNamespacedLease({
      namespace: LEASE_NAMESPACE,
      body: {
        metadata: {
          name: this.name,
          namespace: LEASE_NAMESPACE,
          ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.name, uid: (await this.#core.readNode({ name: this.name })).metadata!.uid! }],
        },
        spec: { holderIdentity: this.name, leaseDurationSeconds: LEASE_SECONDS, renewTime: microTime() as unknown as Date },
      },
    });
    this.#heartbeat = setInterval(() => void this.#renew(), this.#options.heartbeatMs ?? 5_000);
    this.#heartbeat.unref();
    this.log(`node ${this.name} registered`);
  }

  async #renew(): Promise<void> {
    try {
      await this.#coordination.patchNamespacedLease(
        { namespace: LEASE_NAMESPACE, name: this.name, body: { spec: { renewTime: microTime() } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (!this.#stopped) this.log(`lease renewal failed: ${(err as Error).message}`);
    }
  }

  async #startInformer(): Promise<void> {
    const informer = makeInformer<V1Pod>(this.#options.kubeConfig, '/api/v1/pods', () => this.#core.listPodForAllNamespaces());
    informer.on('add', (pod) => this.#handle(pod));
    informer.on('update', (pod) => this.#handle(pod));
    informer.on('delete', (pod) => void this.#deleted(pod));
    informer.on('error', (err) => {
      if (this.#stopped) return;
      this.log(`pod watch failed (${(err as Error)?.message ?? err}); restarting in 1 s`);
      setTimeout(() => void (this.#stopped ? undefined : informer.start().catch(() => undefined)), 1_000).unref();
    });
    this.#informer = informer;
    await informer.start();
  }

  #handle(pod: V1Pod): void {
    if (this.#stopped) return;
    const uid = pod.metadata!.uid!;
    const nodeName = pod.spec?.nodeName;
    if (!nodeName) {
      if ((pod.spec?.schedulerName ?? DEFAULT_SCHEDULER) === DEFAULT_SCHEDULER && !pod.metadata?.deletionTimestamp) void this.#bind(pod);
      return;
    }
    if (nodeName !== this.name) return;
    const running = this.#pods.get(uid);
    if (running) {
      running.observe(pod);
      return;
    }
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    if (pod.metadata?.deletionTimestamp) {
      void this.#core
        .deleteNamespacedPod({ namespace: pod.metadata.namespace!, name: pod.metadata.name!, body: { gracePeriodSeconds: 0, preconditions: { uid } } })
        .catch(() => undefined);
      return;
    }
    const rigPod = new RigPod(this.#podHost(), pod);
    this.#pods.set(uid, rigPod);
    try {
      rigPod.start();
      this.log(`${rigPod.name}: started on ${rigPod.ip}`);
    } catch (err) {
      this.log(`${rigPod.name}: could not start: ${(err as Error).message}`);
      this.#event(pod, 'Warning', 'FailedCreatePodSandBox', (err as Error).message);
    }
  }

  async #bind(pod: V1Pod): Promise<void> {
    const uid = pod.metadata!.uid!;
    if (this.#binding.has(uid)) return;
    this.#binding.add(uid);
    try {
      await this.#core.createNamespacedPodBinding({
        namespace: pod.metadata!.namespace!,
        name: pod.metadata!.name!,
        body: { metadata: { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, uid }, target: { apiVersion: 'v1', kind: 'Node', name: this.name } },
      });
      this.#event(pod, 'Normal', 'Scheduled', `Successfully assigned ${pod.metadata!.namespace}/${pod.metadata!.name} to ${this.name}`);
    } catch (err) {
      this.#binding.delete(uid);
      this.log(`${pod.metadata!.namespace}/${pod.metadata!.name}: binding failed: ${(err as Error).message}`);
    }
  }

  async #deleted(pod: V1Pod): Promise<void> {
    const uid = pod.metadata!.uid!;
    this.#binding.delete(uid);
    const running = this.#pods.get(uid);
    if (!running) return;
    this.#pods.delete(uid);
    await running.gone();
    this.log(`${running.name}: gone`);
  }

  #podHost(): PodHost {
    return {
      nodeName: this.name,
      hostIp: '127.0.0.1',
      apiServer: this.#apiServer,
      core: this.#core,
      addresses: this.#addresses,
      dir: this.#options.dir,
      event: (pod, type, reason, message) => this.#event(pod, type, reason, message),
      log: (message) => this.log(message),
    };
  }

  #event(pod: V1Pod, type: string, reason: string, message: string): void {
    const now = new Date();
    const namespace = pod.metadata!.namespace!;
    void this.#core
      .createNamespacedEvent({
        namespace,
        body: {
          metadata: { generateName: `${pod.metadata!.name}.`, namespace },
          involvedObject: { apiVersion: 'v1', kind: 'Pod', namespace, name: pod.metadata!.name, uid: pod.metadata!.uid },
          type,
          reason,
          message,
          source: { component: 'kubelet', host: this.name },
          reportingComponent: 'kubelet',
          reportingInstance: this.name,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      })
      .catch((err) => this.log(`event ${reason} for ${namespace}/${pod.metadata!.name} not recorded: ${(err as Error).message}`));
  }
}
