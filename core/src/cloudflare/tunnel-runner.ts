import type { Logger } from 'pino';
import { ErrorCode, isWarrenError } from '../errors.js';
import type { Acceptor } from '../lifecycle/manager.js';
import type { TunnelStateStore } from '../state/tunnel.js';
import type { TunnelConnector } from '../tunnel/connector.js';
import type { TunnelCredentials } from '../tunnel/credentials.js';
import type { ResolvedTunnel, TunnelLifecycle } from './tunnel-lifecycle.js';

export interface TunnelPartOptions {
  /**
   * Decides which tunnel runs and follows its replacements (managed tunnel) or its changed token or credentials
   * file (supplied tunnel). Without it, `credentials` run as they are (the demo's edge simulator).
   */
  readonly lifecycle?: TunnelLifecycle | undefined;
  /** Credentials known at assembly: the tunnel's id is published at once. Required without `lifecycle`. */
  readonly credentials?: TunnelCredentials | undefined;
  /** The connector's credentials for a tunnel the lifecycle resolved. */
  readonly credentialsOf: (tunnel: ResolvedTunnel) => TunnelCredentials;
  readonly connector: (credentials: TunnelCredentials) => TunnelConnector;
  /** Where the tunnel's id, replaced ids and registered connections are published. */
  readonly state: TunnelStateStore;
  readonly logger: Logger;
}

/**
 * The tunnel part of Warren: runs a connector for the tunnel this replica serves (one after the other when the
 * tunnel is replaced or its credentials change, see {@link runResolvedTunnel}) and publishes the tunnel's
 * state — the one place the tunnel id is written.
 */
export class TunnelPart implements Acceptor {
  readonly needsLeader = false;
  readonly acceptor = true;
  readonly #o: TunnelPartOptions;
  #connector: TunnelConnector | undefined;

  constructor(options: TunnelPartOptions) {
    if (!options.lifecycle && !options.credentials) throw new TypeError('a tunnel without a lifecycle needs its credentials');
    this.#o = options;
    if (options.credentials) options.state.identify(options.credentials.tunnelId);
  }

  /** The connector running now, if any. */
  get connector(): TunnelConnector | undefined {
    return this.#connector;
  }

  async start(signal: AbortSignal): Promise<void> {
    const { lifecycle, logger } = this.#o;
    if (!lifecycle) return this.#run(this.#o.credentials!, signal, []);
    const initial = await lifecycle.resolve(signal);
    if (initial.mode === 'disabled') return;
    const runConnector = (tunnel: ResolvedTunnel, run: AbortSignal, signals: ConnectorSignals): Promise<void> =>
      this.#run(this.#o.credentialsOf(tunnel), run, lifecycle.replacedTunnelIds, () => signals.credentialsRefused());
    await runResolvedTunnel({ lifecycle, initial, runConnector, logger }, signal);
  }

  async #run(credentials: TunnelCredentials, signal: AbortSignal, formerIds: readonly string[], refused?: () => void): Promise<void> {
    const { state } = this.#o;
    state.identify(credentials.tunnelId, formerIds);
    const connector = this.#o.connector(credentials);
    this.#connector = connector;
    const unsubscribe = connector.onConnectionsChange((registered) => state.connections(registered));
    const unsubscribeRefused = refused ? connector.onCredentialsRefused(refused) : () => {};
    try {
      await connector.start(signal);
    } finally {
      unsubscribe();
      unsubscribeRefused();
      state.connections(0);
    }
  }
}

/** What {@link runResolvedTunnel} needs from its caller. */
export interface TunnelRunnerOptions {
  readonly lifecycle: Pick<TunnelLifecycle, 'watchForReplacement'> & Partial<Pick<TunnelLifecycle, 'watchSuppliedCredentials'>>;
  /** The tunnel to run first (the result of `lifecycle.resolve`; not `disabled`). */
  readonly initial: ResolvedTunnel;
  /**
   * Starts a connector for a resolved tunnel and resolves when it stopped (rejects with why it failed). It calls
   * `signals.credentialsRefused` whenever the edge refuses the credentials on a (re-)registration.
   */
  readonly runConnector: (tunnel: ResolvedTunnel, signal: AbortSignal, signals: ConnectorSignals) => Promise<void>;
  readonly logger: Logger;
}

/** What a running connector reports to the runner. */
interface ConnectorSignals {
  /** The edge refused the connector's credentials (`Unauthorized`), at start or on a reconnect. */
  credentialsRefused(): void;
}

/**
 * Runs the tunnel connector until `signal` aborts. For a managed tunnel it also follows replacements: when
 * {@link TunnelLifecycle.watchForReplacement} reports another tunnel (deleted in Cloudflare and replaced by the
 * leader) or new credentials for it (a rotated token), the running connector is stopped gracefully (unregister,
 * drain) and one is started with them. A managed connector whose credentials the edge refuses at start asks for
 * a check right away (the leader re-reads the token) and waits for new credentials instead of failing; so does
 * one the edge refuses on a reconnect while it runs (a token rotated after it registered), without waiting for
 * the periodic check, and its registered connections keep serving until the new credentials arrive. A supplied
 * tunnel follows its token or credentials file the same way ({@link TunnelLifecycle.watchSuppliedCredentials}).
 * Any other connector failure rejects.
 */
export async function runResolvedTunnel(options: TunnelRunnerOptions, signal: AbortSignal): Promise<void> {
  const { logger } = options;
  let current = options.initial;
  while (!signal.aborted) {
    const connectorRun = linkedAbort(signal);
    let watchRun = linkedAbort(signal);
    try {
      let refusedOnce!: () => void;
      const refusal = new Promise<{ refused: true }>((resolve) => (refusedOnce = () => resolve({ refused: true })));
      const running = options.runConnector(current, connectorRun.signal, { credentialsRefused: () => refusedOnce() }).then(
        () => ({ error: undefined as unknown }),
        (error: unknown) => ({ error }),
      );
      let replaced = watch(options, current, watchRun.signal);
      let first = await Promise.race([running, replaced.then((next) => ({ next })), ...(current.mode === 'managed' ? [refusal] : [])]);
      if ('refused' in first) {
        // A rotated token: ask for new credentials now rather than at the next periodic check.
        logger.warn('the edge refused the tunnel credentials on a registration; checking for new credentials now');
        watchRun.abort();
        await replaced;
        watchRun = linkedAbort(signal);
        replaced = watch(options, current, watchRun.signal, true);
        first = await Promise.race([running, replaced.then((next) => ({ next }))]);
      }
      let next: ResolvedTunnel | undefined;
      if ('next' in first) {
        next = first.next;
        connectorRun.abort();
        await running; // the old connector unregisters and drains before the next one starts
      } else if (current.mode === 'managed' && !signal.aborted && isWarrenError(first.error) && first.error.code === ErrorCode.TunnelCredentials) {
        logger.error({ err: first.error.message }, 'the edge refuses the stored tunnel credentials; checking for a rotated token and waiting for new credentials');
        watchRun.abort();
        await replaced;
        const refusedRun = linkedAbort(signal);
        try {
          next = await watch(options, current, refusedRun.signal, true);
        } finally {
          refusedRun.abort();
        }
      } else {
        watchRun.abort();
        await replaced;
        if (first.error) throw first.error;
        return;
      }
      if (signal.aborted || !next) return;
      logger.info({ tunnelId: next.mode === 'managed' ? next.credentials.tunnelId : undefined }, 'restarting the tunnel connector on the replacement tunnel');
      current = next;
    } finally {
      watchRun.abort();
      connectorRun.abort();
    }
  }
}

/**
 * What replaces `current`: for a managed tunnel the lifecycle's replacement watch (checking at once when the edge
 * just `refused` its credentials), for a supplied one the credentials-file watch when the lifecycle offers it.
 * Settles with undefined when `signal` aborts or the watch fails.
 */
function watch(options: TunnelRunnerOptions, current: ResolvedTunnel, signal: AbortSignal, refused = false): Promise<ResolvedTunnel | undefined> {
  const { lifecycle } = options;
  if (current.mode === 'managed') return lifecycle.watchForReplacement(current.credentials, signal, { refused }).catch(() => undefined);
  if (current.mode === 'supplied' && lifecycle.watchSuppliedCredentials) return lifecycle.watchSuppliedCredentials(signal).catch(() => undefined);
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(undefined), { once: true }));
}

/**
 * An AbortController that also aborts when `parent` does. Its listener on `parent` goes away when it aborts, so
 * a long-lived parent does not collect one listener per replacement.
 */
function linkedAbort(parent: AbortSignal): AbortController {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort();
    return controller;
  }
  const forward = (): void => controller.abort();
  parent.addEventListener('abort', forward, { once: true });
  controller.signal.addEventListener('abort', () => parent.removeEventListener('abort', forward), { once: true });
  return controller;
}
