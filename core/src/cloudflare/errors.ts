import { ErrorCode, WarrenError } from '../errors.js';
import type Cloudflare from 'cloudflare';
import { redactSecrets } from './redact.js';
import { loadedCloudflareSdk } from './sdk.js';

/** One entry of the API's `errors` array. */
export interface CloudflareErrorDetail {
  readonly code: number;
  readonly message: string;
}

/**
 * A failed Cloudflare API call, as a WarrenError with code `WARREN_ERR_CLOUDFLARE_API`. Carries the HTTP status
 * and the API's error codes so callers can branch (e.g. 81053 "an A, AAAA or CNAME record with that host already
 * exists", 81058 "an identical record already exists") without parsing text.
 * The message names the operation and never contains the API token.
 */
export class CloudflareApiError extends WarrenError {
  /** HTTP status, or undefined for connection errors and timeouts. */
  readonly httpStatus: number | undefined;
  readonly details: readonly CloudflareErrorDetail[];
  /** True for 429, 5xx, timeouts and connection errors: trying again later can help. */
  readonly retryable: boolean;

  constructor(message: string, httpStatus: number | undefined, details: readonly CloudflareErrorDetail[], retryable: boolean) {
    super(ErrorCode.CloudflareApi, redactSecrets(message), { terminal: !retryable, ...(httpStatus ? { status: httpStatus } : {}) });
    this.name = 'CloudflareApiError';
    this.httpStatus = httpStatus;
    this.details = details;
    this.retryable = retryable;
  }

  /** True when the API reported this error code. */
  hasCode(code: number): boolean {
    return this.details.some((d) => d.code === code);
  }
}

/** Turns whatever the SDK threw into a {@link CloudflareApiError} naming `operation`. Abort errors pass through. */
export function cloudflareError(operation: string, err: unknown): CloudflareApiError | Error {
  if (err instanceof CloudflareApiError) return err;
  // An SDK error exists only once the SDK is loaded; checking must not load it.
  const Sdk = loadedCloudflareSdk();
  if ((Sdk && err instanceof Sdk.APIUserAbortError) || (err as Error)?.name === 'AbortError') return err as Error;
  if (Sdk && err instanceof Sdk.APIError && typeof err.status === 'number') {
    const details = extractDetails(err);
    const described = details.length ? details.map((d) => `${d.code} ${d.message}`).join('; ') : 'no error details';
    const hint = err.status === 401 || err.status === 403 ? ' (check the API token and its permissions, see docs/cloudflare.md)' : '';
    const retryable = err.status === 429 || err.status >= 500 || err.status === 408;
    return new CloudflareApiError(`Cloudflare API ${operation} failed: HTTP ${err.status}: ${described}${hint}`, err.status, details, retryable);
  }
  if (Sdk && err instanceof Sdk.APIConnectionTimeoutError) {
    return new CloudflareApiError(`Cloudflare API ${operation} timed out`, undefined, [], true);
  }
  if (Sdk && err instanceof Sdk.APIConnectionError) {
    return new CloudflareApiError(`Cloudflare API ${operation} failed: cannot connect: ${(err.cause as Error | undefined)?.message ?? err.message}`, undefined, [], true);
  }
  return new CloudflareApiError(`Cloudflare API ${operation} failed: ${(err as Error)?.message ?? String(err)}`, undefined, [], false);
}

/** Runs one SDK call and converts its failure with {@link cloudflareError}. */
export async function callCloudflare<T>(operation: string, call: () => PromiseLike<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw cloudflareError(operation, err);
  }
}

function extractDetails(err: InstanceType<typeof Cloudflare.APIError>): CloudflareErrorDetail[] {
  const raw = (err as { errors?: unknown }).errors ?? (err.error as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((e): e is { code: unknown; message: unknown } => typeof e === 'object' && e !== null)
    .map((e) => ({ code: Number(e.code), message: String(e.message ?? '') }));
}
