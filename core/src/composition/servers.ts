import type { DependencyContainer } from 'tsyringe';
import { listenError } from './listen.js';
import { PARTS, provide, provideReadiness, provideRunnable } from './parts.js';
import { token, TOKENS } from '../di/tokens.js';
import type { Acceptor } from '../lifecycle/manager.js';
import { componentLogger } from '../observability/logger.js';
import { HttpEntry } from '../proxy/http-entry.js';
import { Pipeline } from '../proxy/pipeline.js';

/** The proxy pipeline registered in `container`; also `TOKENS.ExchangeHandler`. */
export const PIPELINE = token<Pipeline>('core.Pipeline');
/** The plain-HTTP entry point registered in `container` (with `server.proxyListen`). */
export const HTTP_ENTRY = token<HttpEntry>('core.HttpEntry');

export interface ProxyOptions {
  /** How long a retired generation may wait for its exchanges (default `GENERATION_DRAIN_LIMIT_MS`). */
  readonly drainLimitMs?: number | undefined;
}

/**
 * Registers the proxy pipeline: the `ExchangeHandler` every acceptor hands its exchanges to. It follows the route
 * store while it runs, and as a handler it is stopped only after every acceptor drained.
 */
export function provideProxy(container: DependencyContainer, options: ProxyOptions = {}): void {
  provide(
    container,
    PIPELINE,
    (c) =>
      new Pipeline({
        container: c,
        config: c.resolve(TOKENS.Config),
        logger: c.resolve(TOKENS.Logger),
        metrics: c.resolve(TOKENS.Metrics),
        secrets: c.resolve(TOKENS.Secrets),
        events: c.resolve(TOKENS.Events),
        routes: c.resolve(TOKENS.RouteStore),
        drainLimitMs: options.drainLimitMs,
      }),
  );
  container.register(TOKENS.ExchangeHandler, { useToken: PIPELINE });
  provideRunnable(container, 'pipeline', (c) => c.resolve(PIPELINE));
  provideReadiness(container, 'routes', (c) => {
    const pipeline = c.resolve(PIPELINE);
    return () => (pipeline.generation !== undefined ? true : 'no route table live yet');
  });
}

/**
 * Registers the servers: the health and metrics endpoint (`server.listen`) and, with `server.proxyListen`, the
 * plain-HTTP entry point. A listener that cannot bind fails the start naming the setting that moves it.
 */
export function provideServers(container: DependencyContainer): void {
  const config = container.resolve(TOKENS.Config);
  provideHealth(container);
  if (config.server.proxyListen) provideHttpEntry(container, config.server.proxyListen);
}

/** Registers the health and metrics endpoint (`server.listen`). */
export function provideHealth(container: DependencyContainer): void {
  provideRunnable(container, 'health', (c) => listening(c.resolve(PARTS.Health), 'server.listen', c.resolve(TOKENS.Config).server.listen));
}

/** Headroom of the entry's HTTP parser over `proxy.maxHeaderBytes`, so that the pipeline answers an oversize head itself, naming the setting. */
const PARSER_HEADER_HEADROOM = 16 * 1024;

/** Registers the plain-HTTP entry point on `listen` (`server.proxyListen`). */
export function provideHttpEntry(container: DependencyContainer, listen: string): void {
  provide(
    container,
    HTTP_ENTRY,
    (c) =>
      new HttpEntry({
        handler: c.resolve(TOKENS.ExchangeHandler),
        listen,
        logger: componentLogger(c.resolve(TOKENS.Logger), 'http-entry'),
        maxHeaderSize: c.resolve(TOKENS.Config).proxy.maxHeaderBytes + PARSER_HEADER_HEADROOM,
      }),
  );
  provideRunnable(container, 'http-entry', (c) => listening(c.resolve(HTTP_ENTRY), 'server.proxyListen', listen));
}

/** An acceptor whose listen failure becomes {@link listenError}. */
function listening(server: { start(signal: AbortSignal): Promise<void> }, setting: string, address: string): Acceptor {
  return {
    needsLeader: false,
    acceptor: true,
    start: (signal) =>
      server.start(signal).catch((err: unknown) => {
        throw listenError(err, setting, address);
      }),
  };
}
