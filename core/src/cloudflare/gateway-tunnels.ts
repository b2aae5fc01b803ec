import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { V1SecretList } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { apiPath, type KubeClient } from '../k8s/api/client.js';
import { kubernetesError } from '../k8s/api-errors.js';
import type { GatewayRef, GatewaySet } from '../gateway/gateway-set.js';
import type { EventSink, Runnable } from '../plugin-api/lifecycle.js';
import { Gauge, type Registry } from 'prom-client';
import type { GatewayTunnel, GatewayTunnels as PublishedTunnels, GatewayTunnelsStore } from '../state/gateway-tunnels.js';
import type { Leadership } from '../state/leadership.js';
import type { Published } from '../state/published.js';
import type { TunnelConnector } from '../tunnel/connector.js';
import type { CloudflareClientFactory } from './client.js';
import { KubernetesCredentialsSecretStore, type CredentialsSecretStore, type SecretMetadata } from './secret-store.js';
import type { ManagedTunnelCredentials } from './tunnel-credentials.js';
import { TunnelLifecycle } from './tunnel-lifecycle.js';
import { runResolvedTunnel } from './tunnel-runner.js';

/** Label every Gateway tunnel credentials Secret carries (value `true`): how orphans are found. */
export const GATEWAY_TUNNEL_LABEL = 'warren.dev/gateway-tunnel';
/** Annotation naming the Gateway (`namespace/name`) a credentials Secret belongs to. */
export const GATEWAY_ANNOTATION = 'warren.dev/gateway';
/** Longest tunnel name Warren gives a Gateway's tunnel; longer ones are cut and end in a hash. */
const MAX_TUNNEL_NAME = 90;

/** The credentials Secrets of Gateway tunnels, in the controller namespace. */
export interface GatewayTunnelSecrets {
  /** The store of one Gateway's Secret. */
  store(name: string): CredentialsSecretStore;
  /** Every Gateway tunnel Secret of this installation: its name and the Gateway (`namespace/name`) it was written for. */
  list(signal: AbortSignal): Promise<Array<{ readonly name: string; readonly gateway: string | undefined }>>;
}

export interface GatewayTunnelsOptions {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly clientFactory: CloudflareClientFactory;
  readonly leadership: Published<Leadership>;
  readonly env?: NodeJS.ProcessEnv | undefined;
  readonly gateways: GatewaySet;
  readonly secrets: GatewayTunnelSecrets;
  /** A connector for Gateway `gateway`'s tunnel; it tags its exchanges with that entrance. */
  readonly connector: (gateway: string, credentials: ManagedTunnelCredentials) => TunnelConnector;
  readonly state: GatewayTunnelsStore;
  /** Warning Events on Gateways that get no tunnel (leader only, deduplicated by the sink). */
  readonly events: EventSink;
  /** Lifecycle timings (defaults as for the main tunnel). */
  readonly pollIntervalMs?: number | undefined;
  readonly replacementCheckMs?: number | undefined;
  readonly existenceCheckMs?: number | undefined;
  /** First retry delay after a failed resolve, delete or cleanup (default 1 s), doubled up to 60 s. */
  readonly retryBaseMs?: number | undefined;
  /** Where `warren_gateway_tunnels` and `warren_gateway_tunnel_connections` are registered; none when omitted. */
  readonly registry?: Registry | undefined;
}

/**
 * Managed tunnel: a Cloudflare tunnel per Gateway of Warren's classes, so that each Gateway is a data plane of its
 * own — its address is its tunnel's `<tunnel-id>.cfargotunnel.com`, and an exchange that arrives on it matches
 * only that Gateway's routes.
 *
 * Every replica runs, per Gateway, a {@link TunnelLifecycle} (tunnel name {@link gatewayTunnelName}, credentials
 * in the Secret {@link gatewaySecretName} of the controller namespace, labelled and annotated with the Gateway)
 * and a connector with `tunnel.haConnections` connections, started when the Gateway appears and stopped when it
 * goes. The leader creates or adopts each tunnel; when a Gateway is deleted it deletes the tunnel in Cloudflare
 * and its Secret (nothing else uses that tunnel), and when it begins to lead it deletes the tunnels and Secrets of
 * Gateways that no longer exist (deleted while no leader ran). At most `gateway.maxTunnels` Gateways get a
 * tunnel, oldest first; the others are reported (`Programmed: False`, reason `NoResources`, and a Warning Event).
 */
export class GatewayTunnels implements Runnable {
  readonly needsLeader = false;
  readonly #o: GatewayTunnelsOptions;
  readonly #log: Logger;
  readonly #runs = new Map<string, { readonly abort: AbortController; readonly done: Promise<void>; readonly lifecycle: TunnelLifecycle }>();
  readonly #refused = new Set<string>();
  /** Runs being stopped (unregister, drain), by Gateway: a Gateway that comes back starts once its old run ended. */
  readonly #stopping = new Map<string, Promise<void>>();
  /** Asks the loop for another pass. */
  #poke: () => void = () => {};
  /** Background deletions and cleanups, awaited on stop. */
  readonly #chores = new Set<Promise<void>>();

  constructor(options: GatewayTunnelsOptions) {
    this.#o = options;
    this.#log = options.logger.child({ component: 'gateway-tunnels' });
  }

  async start(signal: AbortSignal): Promise<void> {
    const { gateways } = this.#o;
    const stopMetrics = this.#o.registry ? followInMetrics(this.#o.state, this.#o.registry) : () => {};
    try {
      await gateways.waitForSync(signal);
      await this.#loop(signal);
    } finally {
      stopMetrics();
    }
  }

  async #loop(signal: AbortSignal): Promise<void> {
    const { gateways, leadership } = this.#o;
    let wake: () => void = () => {};
    let pending = true;
    const poke = (): void => {
      pending = true;
      wake();
    };
    this.#poke = poke;
    const stopGateways = gateways.onChange(poke);
    const onAbort = (): void => wake();
    signal.addEventListener('abort', onAbort, { once: true });
    let leading = leadership.current.leading;
    const stopLeadership = leadership.subscribe((now) => {
      if (now.leading && !leading) {
        this.#chore(signal, 'clean up the tunnels of deleted Gateways', (s) => this.#cleanUpOrphans(s));
        poke(); // a new leader reports the Gateways left without a tunnel
      }
      leading = now.leading;
    });
    if (leading) this.#chore(signal, 'clean up the tunnels of deleted Gateways', (s) => this.#cleanUpOrphans(s));
    try {
      while (!signal.aborted) {
        if (pending) {
          pending = false;
          await this.#reconcile(signal);
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      stopGateways();
      stopLeadership();
      signal.removeEventListener('abort', onAbort);
      for (const run of this.#runs.values()) run.abort.abort();
      await Promise.all([...[...this.#runs.values()].map((r) => r.done), ...this.#stopping.values()]);
      this.#runs.clear();
      await Promise.all(this.#chores);
    }
  }

  /** Starts and stops Gateway tunnels to match the Gateways; deletes the tunnels of deleted Gateways (leader). */
  async #reconcile(signal: AbortSignal): Promise<void> {
    const all = this.#o.gateways.gateways();
    if (!all) return;
    const max = this.#o.config.gateway.maxTunnels;
    const ordered = [...all].sort((a, b) => (a.created !== b.created ? a.created - b.created : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const served = new Map(ordered.slice(0, max).map((g) => [g.key, g]));
    const exists = new Set(ordered.map((g) => g.key));
    for (const [key, run] of [...this.#runs]) {
      if (served.has(key)) continue;
      this.#runs.delete(key);
      if (!exists.has(key)) this.#log.info({ gateway: key }, 'the Gateway was deleted; stopping its tunnel');
      this.#stop(key, run, signal);
    }
    for (const g of served.values()) {
      this.#refused.delete(g.key);
      if (!this.#runs.has(g.key) && !this.#stopping.has(g.key)) this.#startRun(g, signal);
    }
    for (const g of ordered.slice(max)) {
      const message = `Gateway ${g.key} gets no tunnel: gateway.maxTunnels (${max}) older Gateways have one; delete one or raise the setting`;
      this.#o.state.set(g.key, { tunnelId: undefined, registeredConnections: 0, problem: { reason: 'NoResources', message } });
      if (!this.#refused.has(g.key)) {
        this.#refused.add(g.key);
        this.#log.warn({ gateway: g.key, maxTunnels: max }, 'Gateway gets no tunnel: gateway.maxTunnels reached');
      }
      this.#o.events.warning({ kind: 'Gateway', namespace: g.namespace, name: g.name, uid: g.uid }, 'TooManyGatewayTunnels', message);
    }
    for (const key of this.#refused) {
      if (exists.has(key)) continue;
      this.#refused.delete(key);
      this.#o.state.set(key, undefined);
    }
  }

  /**
   * Stops Gateway `key`'s run without holding up the others; then, when the Gateway no longer exists, the leader
   * deletes its tunnel and Secret (not when it exists again by then: same name, same Secret).
   */
  #stop(key: string, run: { readonly abort: AbortController; readonly done: Promise<void>; readonly lifecycle: TunnelLifecycle }, signal: AbortSignal): void {
    run.abort.abort();
    const stopped = run.done.then(() => {
      this.#stopping.delete(key);
      if (!this.#runs.has(key) && !this.#refused.has(key)) this.#o.state.set(key, undefined);
      const exists = this.#o.gateways.gateways()?.some((g) => g.key === key) ?? true;
      if (!exists && this.#o.leadership.current.leading)
        this.#chore(signal, `delete the tunnel of Gateway ${key}`, (s) => run.lifecycle.deleteTunnel(s).then(() => undefined));
      this.#poke();
    });
    this.#stopping.set(key, stopped);
  }

  #startRun(g: GatewayRef, parent: AbortSignal): void {
    const abort = new AbortController();
    const onParent = (): void => abort.abort();
    parent.addEventListener('abort', onParent, { once: true });
    const lifecycle = this.#lifecycle(g.key);
    this.#o.state.set(g.key, { tunnelId: undefined, registeredConnections: 0 });
    const done = this.#run(g.key, lifecycle, abort.signal).finally(() => parent.removeEventListener('abort', onParent));
    this.#runs.set(g.key, { abort, done, lifecycle });
  }

  /** Resolves Gateway `key`'s tunnel and runs its connector (following replacements) until `signal` aborts; retries failures. */
  async #run(key: string, lifecycle: TunnelLifecycle, signal: AbortSignal): Promise<void> {
    const log = this.#log.child({ gateway: key });
    let delay = this.#o.retryBaseMs ?? 1_000;
    while (!signal.aborted) {
      try {
        const initial = await lifecycle.resolve(signal);
        if (initial.mode !== 'managed') return;
        await runResolvedTunnel(
          {
            lifecycle,
            initial,
            logger: log,
            runConnector: async (tunnel, run, signals) => {
              if (tunnel.mode !== 'managed') return;
              const publish = (registeredConnections: number): void => this.#o.state.set(key, { tunnelId: tunnel.credentials.tunnelId, registeredConnections });
              publish(0);
              const connector = this.#o.connector(key, tunnel.credentials);
              const offConnections = connector.onConnectionsChange(publish);
              const offRefused = connector.onCredentialsRefused(() => signals.credentialsRefused());
              try {
                await connector.start(run);
              } finally {
                offConnections();
                offRefused();
                publish(0);
              }
            },
          },
          signal,
        );
        return;
      } catch (err) {
        if (signal.aborted) return;
        log.warn({ err: (err as Error).message, retryInMs: delay }, "the Gateway's tunnel failed; retrying");
        if (!this.#o.state.current.get(key)?.tunnelId) {
          // The status says why the Gateway has no address; the details (API answers) stay in the controller's log.
          const message = "the Gateway's tunnel could not be created or read yet; retrying (see the controller log)";
          this.#o.state.set(key, { tunnelId: undefined, registeredConnections: 0, problem: { reason: 'AddressNotAssigned', message } });
        }
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        delay = Math.min(delay * 2, 60_000);
      }
    }
  }

  /** The lifecycle of Gateway `key`'s tunnel: its own name and Secret, the main tunnel's account and timings. */
  #lifecycle(key: string, secretName = gatewaySecretName(this.#o.config.cloudflare.credentialsSecretName, key)): TunnelLifecycle {
    const { config } = this.#o;
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    return new TunnelLifecycle({
      config,
      logger: this.#log.child({ gateway: key }),
      clientFactory: this.#o.clientFactory,
      secretStore: this.#o.secrets.store(secretName),
      leadership: this.#o.leadership,
      env: this.#o.env,
      tunnelName: gatewayTunnelName(config.cloudflare.tunnelName ?? 'warren', namespace, name),
      secretMetadata: gatewaySecretMetadata(namespace, name),
      ...(this.#o.pollIntervalMs === undefined ? {} : { pollIntervalMs: this.#o.pollIntervalMs }),
      ...(this.#o.replacementCheckMs === undefined ? {} : { replacementCheckMs: this.#o.replacementCheckMs }),
      ...(this.#o.existenceCheckMs === undefined ? {} : { existenceCheckMs: this.#o.existenceCheckMs }),
    });
  }

  /** Leader: deletes the tunnel and Secret of every Gateway tunnel Secret whose Gateway no longer exists. */
  async #cleanUpOrphans(signal: AbortSignal): Promise<void> {
    const gateways = this.#o.gateways.gateways();
    if (!gateways) return;
    const exists = new Set(gateways.map((g) => g.key));
    for (const secret of await this.#o.secrets.list(signal)) {
      if (!this.#o.leadership.current.leading) return;
      // Only Secrets that name their Gateway are attributed; one that exists again by now keeps its tunnel.
      if (secret.gateway === undefined || !secret.gateway.includes('/')) continue;
      if (exists.has(secret.gateway) || this.#o.gateways.gateways()?.some((g) => g.key === secret.gateway)) continue;
      this.#log.info({ gateway: secret.gateway, secret: secret.name }, 'deleting the tunnel of a Gateway that no longer exists');
      await this.#lifecycle(secret.gateway, secret.name).deleteTunnel(signal);
    }
  }

  /** Runs `work` in the background until it succeeds (retrying with back-off while this replica leads) or `signal` aborts. */
  #chore(signal: AbortSignal, what: string, work: (signal: AbortSignal) => Promise<void>): void {
    const task = (async () => {
      let delay = this.#o.retryBaseMs ?? 1_000;
      while (!signal.aborted && this.#o.leadership.current.leading) {
        try {
          await work(signal);
          return;
        } catch (err) {
          if (signal.aborted) return;
          this.#log.warn({ err: (err as Error).message, retryInMs: delay }, `could not ${what}; retrying`);
          await sleep(delay, undefined, { signal }).catch(() => undefined);
          delay = Math.min(delay * 2, 60_000);
        }
      }
    })();
    this.#chores.add(task);
    void task.finally(() => this.#chores.delete(task));
  }
}

/** Keeps the Gateway tunnel gauges in step with `state` until the returned function is called. */
function followInMetrics(state: GatewayTunnelsStore, registry: Registry): () => void {
  const gauge = (name: string, help: string): Gauge => (registry.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, registers: [registry] });
  const tunnels = gauge('warren_gateway_tunnels', 'Gateways whose own tunnel (managed tunnel) is known to this replica');
  const connections = gauge('warren_gateway_tunnel_connections', "Edge connections of this replica registered for Gateways' own tunnels");
  const update = (now: PublishedTunnels): void => {
    let known = 0;
    let registered = 0;
    for (const t of now.values()) {
      if (t.tunnelId) known++;
      registered += t.registeredConnections;
    }
    tunnels.set(known);
    connections.set(registered);
  };
  update(state.current);
  return state.subscribe(update);
}

/** Sha-256 of a Gateway key, hex: tells Gateways apart in bounded names. */
function gatewayHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * The Cloudflare tunnel name of Gateway `namespace/name`: `<tunnelName>-gw-<namespace>-<name>`, cut to 90
 * characters and ended with a hash of the Gateway when longer, so it stays unique and recognisable.
 */
export function gatewayTunnelName(tunnelName: string, namespace: string, name: string): string {
  const full = `${tunnelName}-gw-${namespace}-${name}`;
  if (full.length <= MAX_TUNNEL_NAME) return full;
  const hash = gatewayHash(`${namespace}/${name}`).slice(0, 12);
  return `${full.slice(0, MAX_TUNNEL_NAME - hash.length - 1)}-${hash}`;
}

/** The credentials Secret of Gateway `key` (`namespace/name`): `<credentialsSecretName>-gw-<hash>`, in the controller namespace. */
export function gatewaySecretName(credentialsSecretName: string, key: string): string {
  return `${credentialsSecretName}-gw-${gatewayHash(key).slice(0, 16)}`;
}

/** Labels and annotations that tie a credentials Secret to its Gateway. */
function gatewaySecretMetadata(namespace: string, name: string): SecretMetadata {
  const labels: Record<string, string> = {
    'app.kubernetes.io/component': 'gateway-tunnel-credentials',
    [GATEWAY_TUNNEL_LABEL]: 'true',
    'warren.dev/gateway-namespace': namespace,
  };
  // Label values are at most 63 characters; the annotation always names the Gateway in full.
  if (/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/.test(name)) labels['warren.dev/gateway-name'] = name;
  return { labels, annotations: { [GATEWAY_ANNOTATION]: `${namespace}/${name}` } };
}

/**
 * {@link GatewayTunnelSecrets} on the Kubernetes API: the Secrets of `namespace` labelled {@link GATEWAY_TUNNEL_LABEL}
 * whose names derive from `credentialsSecretName` (another installation in the namespace has its own).
 */
export class KubernetesGatewayTunnelSecrets implements GatewayTunnelSecrets {
  readonly #client: KubeClient;
  readonly #namespace: string;
  readonly #prefix: string;

  constructor(client: KubeClient, namespace: string, credentialsSecretName: string) {
    this.#client = client;
    this.#namespace = namespace;
    this.#prefix = `${credentialsSecretName}-gw-`;
  }

  store(name: string): CredentialsSecretStore {
    return new KubernetesCredentialsSecretStore(this.#client, this.#namespace, name);
  }

  async list(signal: AbortSignal): Promise<Array<{ name: string; gateway: string | undefined }>> {
    let list: V1SecretList;
    try {
      list = await this.#client.get<V1SecretList>(apiPath('v1', 'secrets', this.#namespace), { signal, query: { labelSelector: `${GATEWAY_TUNNEL_LABEL}=true` } });
    } catch (err) {
      throw kubernetesError(`list the Gateway tunnel Secrets of namespace ${this.#namespace}`, err);
    }
    return list.items.map((s) => ({ name: s.metadata?.name ?? '', gateway: s.metadata?.annotations?.[GATEWAY_ANNOTATION] })).filter((s) => s.name.startsWith(this.#prefix));
  }
}

export type { GatewayRef, GatewaySet, GatewayTunnel };
