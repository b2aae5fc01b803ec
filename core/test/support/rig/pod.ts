/**
 * One pod on the rig's node, run the way a kubelet runs it, with local processes for containers:
 *
 *  - start: claims a pod address, starts each container's program (see images.ts) on it, reports `podIP`, the
 *    container statuses and the conditions. An unknown image leaves the container waiting with ErrImagePull and a
 *    Warning event; a process that exits on its own is restarted with a bounded backoff (restartCount counts).
 *  - readiness: a container without a readiness probe is ready once running; with an HTTP GET probe it is ready
 *    after `successThreshold` successes and unready after `failureThreshold` failures, probed every
 *    `periodSeconds` (at least 1 s) after `initialDelaySeconds`. Ready = every container ready.
 *  - deletion: once the pod has a deletionTimestamp, per container: the preStop hook (sleep action, `sleep N`
 *    exec, or HTTP GET) within the grace period, then SIGTERM, then SIGKILL when the grace period (at least 2 s
 *    after the hook, as the kubelet gives) runs out; then the final delete with grace 0, and the address is freed.
 *
 * Volumes (volumes.ts) are written into the pod's folder and mounted where the container expects them in a
 * private mount namespace (pod-mounts.ts). Liveness and startup probes and init containers are not simulated.
 */
import {
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Api,
  type V1Container,
  type V1ContainerStatus,
  type V1Pod,
  type V1PodCondition,
  type V1Probe,
} from '@kubernetes/client-node';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnLogged, type LoggedChild } from '../../e2e/support/children.js';
import type { AddressPool } from './addresses.js';
import { containerProcess, KNOWN_IMAGES, NODE_BIN } from './images.js';
import { prepareVolumes } from './volumes.js';

const POD_MOUNTS_MAIN = fileURLToPath(new URL('./pod-mounts.js', import.meta.url));

/** What a pod needs from the node it runs on. */
export interface PodHost {
  readonly nodeName: string;
  readonly hostIp: string;
  /** Where containers reach the apiserver (KUBERNETES_SERVICE_HOST/PORT). */
  readonly apiServer: { readonly host: string; readonly port: string };
  readonly core: CoreV1Api;
  readonly addresses: AddressPool;
  /** Folder under which each container gets its own working directory and output files. */
  readonly dir: string;
  /** Records an event on the pod (best effort). */
  event(pod: V1Pod, type: 'Normal' | 'Warning', reason: string, message: string): void;
  /** A line in the node's own log. */
  log(message: string): void;
}

/** Restart backoff for a container whose process exits on its own: 1 s, doubling, at most 10 s. */
const RESTART_BACKOFF_MS = [1_000, 2_000, 4_000, 8_000, 10_000];
/** The kubelet gives SIGTERM at least this long, even when the preStop hook used up the grace period. */
const MIN_TERM_GRACE_MS = 2_000;

interface ContainerRun {
  readonly spec: V1Container;
  readonly dir: string;
  child?: LoggedChild;
  state:
    | { kind: 'waiting'; reason: string; message?: string }
    | { kind: 'running'; startedAt: Date }
    | { kind: 'terminated'; exitCode: number; reason: string; startedAt?: Date; finishedAt: Date };
  restartCount: number;
  ready: boolean;
  probeTimer?: NodeJS.Timeout;
  successes: number;
  failures: number;
}

const key = (pod: V1Pod) => `${pod.metadata!.namespace}/${pod.metadata!.name}`;

export class RigPod {
  readonly #host: PodHost;
  #pod: V1Pod;
  readonly #uid: string;
  #ip: string | undefined;
  readonly #startTime = new Date();
  readonly #containers: ContainerRun[] = [];
  readonly #transitions = new Map<string, { status: string; at: Date }>();
  #terminating: Promise<void> | undefined;
  #stopped = false;
  #writes: Promise<void> = Promise.resolve();
  #volumes = new Map<string, string>();
  #readyAt: number | undefined;

  constructor(host: PodHost, pod: V1Pod) {
    this.#host = host;
    this.#pod = pod;
    this.#uid = pod.metadata!.uid!;
  }

  get name(): string {
    return key(this.#pod);
  }

  get ip(): string | undefined {
    return this.#ip;
  }

  /** Date.now() when the apiserver first accepted a status with Ready=True for this pod, if ever. */
  get readyAt(): number | undefined {
    return this.#readyAt;
  }

  /** The working directory of container `name` (a test may put files there, as `kubectl exec` would). */
  containerDir(name: string): string | undefined {
    return this.#containers.find((c) => c.spec.name === name)?.dir;
  }

  /** Claims an address, reports the pod, prepares its volumes, then starts the containers and reports again. */
  start(): void {
    this.#ip = this.#host.addresses.claim();
    const podDir = join(this.#host.dir, `${this.#pod.metadata!.namespace}_${this.#pod.metadata!.name}_${this.#uid.slice(0, 8)}`);
    for (const spec of this.#pod.spec?.containers ?? []) {
      const dir = join(podDir, spec.name);
      mkdirSync(dir, { recursive: true });
      this.#containers.push({ spec, dir, state: { kind: 'waiting', reason: 'ContainerCreating' }, restartCount: 0, ready: false, successes: 0, failures: 0 });
    }
    const inits = (this.#pod.spec?.initContainers ?? []).map((c) => c.name);
    if (inits.length > 0) {
      // Running the main containers without the init containers would pass a test that depends on them.
      const message = `init containers (${inits.join(', ')}) are not run by the rig's node`;
      for (const run of this.#containers) run.state = { kind: 'waiting', reason: 'CreateContainerConfigError', message };
      this.#host.event(this.#pod, 'Warning', 'Failed', message);
      this.#host.log(`${this.name}: ${message}`);
      this.#writeStatus();
      return;
    }
    this.#writeStatus();
    this.#mountAndStart(join(podDir, 'volumes'), 0, undefined);
  }

  /**
   * Prepares the volumes, then starts the containers. A failure (a Secret or ConfigMap not created yet, as when
   * manifests are applied before the objects they mount) is retried with the restart backoff until the pod goes,
   * as a kubelet keeps retrying a mount; the Warning event is repeated only when the message changes.
   */
  #mountAndStart(root: string, attempt: number, lastMessage: string | undefined): void {
    void prepareVolumes(this.#pod, this.#host.core, root).then(
      (volumes) => {
        this.#volumes = volumes;
        if (this.#stopped || this.#terminating) return;
        for (const run of this.#containers) this.#startContainer(run);
        this.#writeStatus();
      },
      (err: Error) => {
        if (this.#stopped || this.#terminating) return;
        for (const run of this.#containers) run.state = { kind: 'waiting', reason: 'CreateContainerConfigError', message: err.message };
        if (err.message !== lastMessage) {
          this.#host.event(this.#pod, 'Warning', 'FailedMount', err.message);
          this.#host.log(`${this.name}: ${err.message} (retrying)`);
          this.#writeStatus();
        }
        const delay = RESTART_BACKOFF_MS[Math.min(attempt, RESTART_BACKOFF_MS.length - 1)]!;
        setTimeout(() => this.#mountAndStart(root, attempt + 1, err.message), delay).unref();
      },
    );
  }

  /** Called with every newer version of the pod; starts termination once it is being deleted. */
  observe(pod: V1Pod): void {
    if (pod.metadata?.uid !== this.#uid) return;
    this.#pod = pod;
    if (pod.metadata?.deletionTimestamp && !this.#terminating) this.#terminating = this.#terminate();
  }

  /** The pod object is gone (final delete, or a force delete): kill whatever still runs. */
  async gone(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#containers.map((c) => this.#kill(c)));
    if (this.#ip) this.#host.addresses.release(this.#ip);
  }

  /** Node shutdown: stop at once (SIGTERM, 2 s, SIGKILL), write nothing. */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#containers.map((c) => this.#kill(c)));
    if (this.#ip) this.#host.addresses.release(this.#ip);
  }

  #startContainer(run: ContainerRun): void {
    let proc: ReturnType<typeof containerProcess>;
    let missing: string | undefined;
    try {
      proc = containerProcess(run.spec, this.#ip!);
    } catch (err) {
      missing = (err as Error).message;
    }
    if (!proc) {
      const message = missing ?? `image "${run.spec.image}" is not known to the rig's node (known: ${KNOWN_IMAGES.join(', ')})`;
      run.state = { kind: 'waiting', reason: 'ErrImagePull', message };
      this.#host.event(this.#pod, 'Warning', 'Failed', `Failed to pull image "${run.spec.image}": ${message}`);
      this.#host.log(`${this.name}: container ${run.spec.name}: ${message}`);
      return;
    }
    // What a kubelet adds: the apiserver's address (its real one: ClusterIPs are never routed here).
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      KUBERNETES_SERVICE_HOST: this.#host.apiServer.host,
      KUBERNETES_SERVICE_PORT: this.#host.apiServer.port,
    };
    for (const e of run.spec.env ?? []) env[e.name] = expandEnv(this.#envValue(e), env);
    Object.assign(env, proc.env);
    let command = proc.command;
    let args = proc.args;
    const mounts = (run.spec.volumeMounts ?? []).map((m) => ({
      source: this.#volumes.get(m.name),
      target: m.mountPath,
      readOnly: m.readOnly === true,
      subPath: m.subPath || m.subPathExpr,
    }));
    const badMount = mounts.find((m) => !m.source || m.subPath);
    if (badMount) {
      const message = `volume mount at ${badMount.target}: ${badMount.source ? "subPath is not supported by the rig's node" : 'no such volume'}`;
      run.state = { kind: 'waiting', reason: 'CreateContainerConfigError', message };
      this.#host.event(this.#pod, 'Warning', 'Failed', `container ${run.spec.name}: ${message}`);
      this.#host.log(`${this.name}: container ${run.spec.name}: ${message}`);
      return;
    }
    if (mounts.length) {
      const file = join(run.dir, 'mounts.json');
      writeFileSync(file, JSON.stringify(mounts.map(({ source, target, readOnly }) => ({ source, target, readOnly }))));
      [command, args] = ['unshare', ['-m', '--propagation', 'private', '--', NODE_BIN, POD_MOUNTS_MAIN, file, '--', command, ...args]];
    }
    const child = spawnLogged(`${this.#pod.metadata!.name}-${run.spec.name}`, command, args, { cwd: run.dir, env, dir: run.dir });
    run.child = child;
    run.state = { kind: 'running', startedAt: new Date() };
    run.ready = !run.spec.readinessProbe;
    run.successes = 0;
    run.failures = 0;
    this.#host.event(this.#pod, 'Normal', 'Started', `Started container ${run.spec.name}`);
    if (run.spec.readinessProbe) this.#scheduleProbe(run, run.spec.readinessProbe, true);
    void child.exited.then((exit) => {
      if (run.child !== child) return;
      this.#stopProbe(run);
      const startedAt = run.state.kind === 'running' ? run.state.startedAt : undefined;
      const exitCode = exit.code ?? 128 + (exit.signal === 'SIGKILL' ? 9 : 15);
      run.state = { kind: 'terminated', exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt, finishedAt: new Date() };
      run.ready = false;
      if (this.#stopped || this.#terminating) return;
      this.#host.log(`${this.name}: container ${run.spec.name} exited (${exit.signal ?? exit.code}); restarting`);
      this.#writeStatus();
      const delay = RESTART_BACKOFF_MS[Math.min(run.restartCount, RESTART_BACKOFF_MS.length - 1)]!;
      run.restartCount++;
      setTimeout(() => {
        if (!this.#stopped && !this.#terminating) {
          this.#startContainer(run);
          this.#writeStatus();
        }
      }, delay).unref();
    });
  }

  #envValue(e: NonNullable<V1Container['env']>[number]): string {
    if (e.value !== undefined) return e.value;
    const field = e.valueFrom?.fieldRef?.fieldPath;
    if (field === 'status.podIP') return this.#ip ?? '';
    if (field === 'metadata.name') return this.#pod.metadata?.name ?? '';
    if (field === 'metadata.namespace') return this.#pod.metadata?.namespace ?? '';
    if (field === 'spec.nodeName') return this.#host.nodeName;
    if (field === 'status.hostIP') return this.#host.hostIp;
    if (field === 'spec.serviceAccountName') return this.#pod.spec?.serviceAccountName ?? 'default';
    return '';
  }

  #scheduleProbe(run: ContainerRun, probe: V1Probe, first: boolean): void {
    const periodMs = Math.max(1, probe.periodSeconds ?? 10) * 1_000;
    const delayMs = first ? (probe.initialDelaySeconds ?? 0) * 1_000 : periodMs;
    run.probeTimer = setTimeout(() => {
      void this.#probe(run, probe).then(() => {
        if (run.probeTimer && run.state.kind === 'running') this.#scheduleProbe(run, probe, false);
      });
    }, delayMs);
    run.probeTimer.unref();
  }

  #stopProbe(run: ContainerRun): void {
    if (run.probeTimer) clearTimeout(run.probeTimer);
    run.probeTimer = undefined;
  }

  async #probe(run: ContainerRun, probe: V1Probe): Promise<void> {
    const ok = probe.httpGet ? await this.#httpGet(run, probe.httpGet, (probe.timeoutSeconds ?? 1) * 1_000) : true;
    if (ok) {
      run.failures = 0;
      run.successes++;
    } else {
      run.successes = 0;
      run.failures++;
    }
    const before = run.ready;
    if (!run.ready && run.successes >= (probe.successThreshold ?? 1)) run.ready = true;
    if (run.ready && run.failures >= (probe.failureThreshold ?? 3)) run.ready = false;
    if (run.ready !== before && run.state.kind === 'running') {
      this.#host.log(`${this.name}: container ${run.spec.name} ${run.ready ? 'ready' : 'unready'}`);
      this.#writeStatus();
    }
  }

  /** HTTP GET on the pod's address: true for a 2xx or 3xx answer within `timeoutMs`. */
  #httpGet(run: ContainerRun, get: NonNullable<V1Probe['httpGet']>, timeoutMs: number): Promise<boolean> {
    const port = typeof get.port === 'number' ? get.port : (run.spec.ports?.find((p) => p.name === get.port)?.containerPort ?? Number(get.port));
    return new Promise((resolve) => {
      const req = request({ host: get.host || this.#ip, port, path: get.path || '/', method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
        res.resume();
        resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
      req.end();
    });
  }

  async #terminate(): Promise<void> {
    const graceS = this.#pod.metadata?.deletionGracePeriodSeconds ?? this.#pod.spec?.terminationGracePeriodSeconds ?? 30;
    const deadline = Date.now() + graceS * 1_000;
    this.#host.log(`${this.name}: terminating (grace ${graceS} s)`);
    await Promise.all(this.#containers.map((c) => this.#stopContainer(c, deadline)));
    this.#stopped = true;
    this.#writeStatus();
    await this.#writes;
    try {
      await this.#host.core.deleteNamespacedPod({
        namespace: this.#pod.metadata!.namespace!,
        name: this.#pod.metadata!.name!,
        body: { gracePeriodSeconds: 0, preconditions: { uid: this.#uid } },
      });
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (code !== 404 && code !== 409) this.#host.log(`${this.name}: final delete failed: ${(err as Error).message}`);
    }
  }

  async #stopContainer(run: ContainerRun, deadline: number): Promise<void> {
    const child = run.child;
    if (!child || child.exit) return;
    const hook = run.spec.lifecycle?.preStop;
    if (hook) {
      const started = Date.now();
      await Promise.race([this.#preStop(run, hook), sleep(Math.max(0, deadline - Date.now()))]);
      this.#host.log(`${this.name}: container ${run.spec.name} preStop done after ${Date.now() - started} ms`);
    }
    if (child.exit) return;
    this.#host.log(`${this.name}: container ${run.spec.name} SIGTERM`);
    child.signalGroup('SIGTERM');
    const graceMs = Math.max(MIN_TERM_GRACE_MS, deadline - Date.now());
    const killed = await Promise.race([child.exited.then(() => false), sleep(graceMs).then(() => true)]);
    if (killed) {
      this.#host.log(`${this.name}: container ${run.spec.name} SIGKILL after the grace period`);
      child.signalGroup('SIGKILL');
      await child.exited;
    }
  }

  async #preStop(run: ContainerRun, hook: NonNullable<NonNullable<V1Container['lifecycle']>['preStop']>): Promise<void> {
    const seconds = hook.sleep?.seconds ?? sleepSeconds(hook.exec?.command);
    if (seconds !== undefined) {
      await sleep(seconds * 1_000);
      return;
    }
    if (hook.httpGet) {
      await this.#httpGet(run, hook.httpGet, 10_000);
      return;
    }
    const message = `preStop hook of container ${run.spec.name} is not supported by the rig's node (only sleep, "sleep N" and httpGet)`;
    this.#host.event(this.#pod, 'Warning', 'FailedPreStopHook', message);
    this.#host.log(`${this.name}: ${message}`);
  }

  async #kill(run: ContainerRun): Promise<void> {
    this.#stopProbe(run);
    await run.child?.stop(MIN_TERM_GRACE_MS);
  }

  /** Queues a status write with the pod's current state (writes are serialised, each sends the whole status). */
  #writeStatus(): void {
    const status = this.#status();
    this.#writes = this.#writes.then(async () => {
      if (this.#stopped && status.containerStatuses?.some((c) => c.state?.running)) return;
      try {
        await this.#host.core.patchNamespacedPodStatus(
          { namespace: this.#pod.metadata!.namespace!, name: this.#pod.metadata!.name!, body: { metadata: { uid: this.#uid }, status } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
        if (this.#readyAt === undefined && status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) this.#readyAt = Date.now();
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (code !== 404) this.#host.log(`${this.name}: status write failed: ${(err as Error).message}`);
      }
    });
  }

  #condition(type: string, value: boolean): V1PodCondition {
    const status = value ? 'True' : 'False';
    const last = this.#transitions.get(type);
    if (!last || last.status !== status) this.#transitions.set(type, { status, at: new Date() });
    return { type, status, lastTransitionTime: this.#transitions.get(type)!.at };
  }

  #status(): NonNullable<V1Pod['status']> {
    const running = this.#containers.every((c) => c.state.kind === 'running');
    const ready = running && this.#containers.every((c) => c.ready);
    const containerStatuses: V1ContainerStatus[] = this.#containers.map((c) => ({
      name: c.spec.name,
      image: c.spec.image ?? '',
      imageID: c.state.kind === 'waiting' && c.state.reason === 'ErrImagePull' ? '' : `rig://${c.spec.image}`,
      containerID: c.child ? `rig://${c.child.pid}` : undefined,
      ready: c.ready,
      started: c.state.kind === 'running',
      restartCount: c.restartCount,
      state:
        c.state.kind === 'running'
          ? { running: { startedAt: c.state.startedAt } }
          : c.state.kind === 'waiting'
            ? { waiting: { reason: c.state.reason, message: c.state.message } }
            : { terminated: { exitCode: c.state.exitCode, reason: c.state.reason, startedAt: c.state.startedAt, finishedAt: c.state.finishedAt } },
    }));
    return {
      phase: this.#containers.some((c) => c.state.kind === 'running' || c.restartCount > 0) ? 'Running' : 'Pending',
      hostIP: this.#host.hostIp,
      hostIPs: [{ ip: this.#host.hostIp }],
      podIP: this.#ip,
      podIPs: this.#ip ? [{ ip: this.#ip }] : [],
      startTime: this.#startTime,
      conditions: [
        this.#condition('PodReadyToStartContainers', true),
        this.#condition('Initialized', true),
        this.#condition('ContainersReady', ready),
        this.#condition('Ready', ready),
        this.#condition('PodScheduled', true),
      ],
      containerStatuses,
    };
  }
}

/** `$(NAME)` references to variables defined before, as the kubelet expands them; `$$(` stays a literal `$(`. */
export function expandEnv(value: string, env: NodeJS.ProcessEnv): string {
  return value.replace(/\$\$\(|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (match, name: string | undefined) => (name === undefined ? '$(' : (env[name] ?? match)));
}

/** `["sleep", "5"]`, `["/bin/sleep", "5"]`, `["sh", "-c", "sleep 5"]` → 5; anything else → undefined. */
export function sleepSeconds(command: readonly string[] | undefined): number | undefined {
  if (!command?.length) return undefined;
  const words = /^(\/bin\/)?(ba)?sh$/.test(command[0]!) && command[1] === '-c' && command.length === 3 ? command[2]!.trim().split(/\s+/) : [...command];
  if (words.length !== 2 || !/(^|\/)sleep$/.test(words[0]!) || !/^\d+(\.\d+)?$/.test(words[1]!)) return undefined;
  return Number(words[1]);
}
