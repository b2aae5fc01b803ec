import type Cloudflare from 'cloudflare';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { WriteFence } from '../k8s/api/client.js';
import { readApiToken } from './api-token.js';
import { RequestBudget } from './request-budget.js';
import { cloudflareSdk } from './sdk.js';

/**
 * What `TOKENS.CloudflareClient` holds: returns the official SDK client, configured with the API token, the
 * base URL (`cloudflare.apiBaseUrl`) and the shared request budget. Calling it reads the token (so a rotated token
 * file takes effect) and throws a `WARREN_ERR_CONFIG_INVALID` WarrenError when no token is configured.
 * Every client it returns shares one {@link RequestBudget}.
 */
export type CloudflareClientFactory = () => Cloudflare;

export interface CloudflareClientFactoryOptions {
  /** The `cloudflare` config section. */
  readonly config: Readonly<Config>['cloudflare'];
  readonly logger: Logger;
  /** Environment for `CLOUDFLARE_API_TOKEN` (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Shared budget; default: one built from `config.rateLimit`. */
  readonly budget?: RequestBudget;
  /** When given, `warren_cloudflare_api_requests_total{method,status}` is registered here. */
  readonly registry?: Registry;
  /** SDK retries for 408/409/429/5xx and connection errors (default 2). */
  readonly maxRetries?: number;
  /** Underlying fetch (default the global one). */
  readonly fetch?: typeof fetch;
}

/** The factory plus the budget it shares, for tests and benchmarks. */
export interface BudgetedClientFactory extends CloudflareClientFactory {
  readonly budget: RequestBudget;
  /**
   * From now on, every Cloudflare write (any method but GET and HEAD) of every client of this factory passes
   * `fence` right before it is sent, as the Kubernetes writes of leader-only work do: refused when the fence
   * throws, aborted by the signal it returns. Every Cloudflare write of a replica (tunnel, DNS, firewall) is
   * leader-only work, so a replica that lost its Lease, or was frozen past its renew deadline, changes nothing.
   */
  fenceWrites(fence: WriteFence): void;
}

/**
 * How long Cloudflare blocks a user that went over its global rate limit: every API call of the user (any token,
 * the dashboard too) gets 429 for the next five minutes. A 429 without `retry-after` pauses the budget this long.
 */
export const RATE_LIMIT_BLOCK_MS = 300_000;

/**
 * Builds the {@link CloudflareClientFactory} that bootstrap registers under `TOKENS.CloudflareClient`.
 * No side effects until the factory is called.
 *
 * Every request first takes a token from the shared budget; a 429 answer pauses the budget for its
 * `retry-after` (or {@link RATE_LIMIT_BLOCK_MS} without one) so that all callers back off together (the SDK then
 * retries after the same delay).
 */
export function createCloudflareClientFactory(options: CloudflareClientFactoryOptions): BudgetedClientFactory {
  const config = options.config;
  const { env = process.env } = options;
  const budget = options.budget ?? new RequestBudget({ requests: config.rateLimit.requests, windowMs: config.rateLimit.window, burst: config.rateLimit.burst });
  const baseFetch = options.fetch ?? globalThis.fetch;
  const requests = options.registry ? requestCounter(options.registry) : undefined;
  const sdkLogger = options.logger.child({ component: 'cloudflare-sdk' });

  let fence: WriteFence | undefined;
  const budgetedFetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    await budget.acquire(init?.signal ?? undefined);
    const method = (init?.method ?? 'GET').toUpperCase();
    // Admitted at the last moment before sending: nothing awaited between the check and the write.
    const term = method === 'GET' || method === 'HEAD' ? undefined : fence?.admit();
    const signal = term && init?.signal ? AbortSignal.any([init.signal, term]) : (term ?? init?.signal ?? undefined);
    const response = await baseFetch(input, term ? { ...init, signal } : init);
    requests?.inc({ method, status: String(response.status) });
    if (response.status === 429) budget.pauseFor(retryAfterMs(response.headers) ?? RATE_LIMIT_BLOCK_MS);
    return response;
  };

  let cached: { token: string; client: Cloudflare } | undefined;
  const factory = (() => {
    const token = readApiToken(config, env);
    if (cached?.token === token) return cached.client;
    const Sdk = cloudflareSdk();
    const client = new Sdk({
      apiToken: token,
      apiKey: null,
      apiEmail: null,
      userServiceKey: null,
      baseURL: config.apiBaseUrl,
      timeout: config.requestTimeout,
      maxRetries: options.maxRetries ?? 2,
      fetch: budgetedFetch,
      logLevel: 'warn',
      logger: {
        error: (message: string) => sdkLogger.error(message),
        warn: (message: string) => sdkLogger.warn(message),
        info: (message: string) => sdkLogger.debug(message),
        debug: (message: string) => sdkLogger.trace(message),
      },
    });
    cached = { token, client };
    return client;
  }) as BudgetedClientFactory;
  Object.defineProperty(factory, 'budget', { value: budget });
  Object.defineProperty(factory, 'fenceWrites', { value: (f: WriteFence) => void (fence = f) });
  return factory;
}

/** Milliseconds asked for by `retry-after` (seconds or HTTP date) or `retry-after-ms`. */
export function retryAfterMs(headers: Headers): number | undefined {
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function requestCounter(registry: Registry): Counter<'method' | 'status'> {
  const name = 'warren_cloudflare_api_requests_total';
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<'method' | 'status'>;
  return new Counter({
    name,
    help: 'Cloudflare API requests sent, by HTTP method and response status',
    labelNames: ['method', 'status'],
    registers: [registry],
  });
}
