import type { Logger } from 'pino';
import { ErrorCode, isWarrenError } from '../errors.js';
import type { ResolvedTunnel, TunnelLifecycle } from './tunnel-lifecycle.js';

/** What {@link runResolvedTunnel} needs from its caller. */
export interface TunnelRunnerOptions {
  readonly lifecycle: Pick<TunnelLifecycle, 'watchForReplacement'>;
  /** The tunnel to run first (the result of `lifecycle.resolve`; not `disabled`). */
  readonly initial: ResolvedTunnel;
  /** Starts a connector for a resolved tunnel and resolves when it stopped (rejects with why it failed). */
  readonly runConnector: (tunnel: ResolvedTunnel, signal: AbortSignal) => Promise<void>;
  readonly logger: Logger;
}

/**
 * Runs the tunnel connector until `signal` aborts. For a managed tunnel it also follows replacements: when
 * {@link TunnelLifecycle.watchForReplacement} reports another tunnel (deleted in Cloudflare and replaced by the
 * leader), the running connector is stopped gracefully (unregister, drain) and one is started on the new tunnel.
 * A managed connector whose credentials the edge refuses at start waits for that replacement instead of failing.
 * Any other connector failure rejects.
 */
export async function runResolvedTunnel(options: TunnelRunnerOptions, signal: AbortSignal): Promise<void> {
  const { lifecycle, logger } = options;
  let current = options.initial;
  while (!signal.aborted) {
    const connectorRun = linkedAbort(signal);
    const watchRun = linkedAbort(signal);
    try {
      const running = options.runConnector(current, connectorRun.signal).then(
        () => ({ error: undefined as unknown }),
        (error: unknown) => ({ error }),
      );
      // Only managed tunnels can be replaced; for the others this settles (undefined) once the run ends.
      const replaced: Promise<ResolvedTunnel | undefined> =
        current.mode === 'managed'
          ? lifecycle.watchForReplacement(current.credentials, watchRun.signal).catch(() => undefined)
          : new Promise((resolve) => watchRun.signal.addEventListener('abort', () => resolve(undefined), { once: true }));
      const first = await Promise.race([running, replaced.then((next) => ({ next }))]);
      let next: ResolvedTunnel | undefined;
      if ('next' in first) {
        next = first.next;
        connectorRun.abort();
        await running; // the old connector unregisters and drains before the next one starts
      } else if (current.mode === 'managed' && !signal.aborted && isWarrenError(first.error) && first.error.code === ErrorCode.TunnelCredentials) {
        logger.error({ err: first.error.message }, 'the edge refuses the stored tunnel credentials; waiting for the tunnel to be replaced');
        next = await replaced;
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
