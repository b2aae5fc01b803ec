import { ErrorCode, WarrenError } from '../errors.js';

/** What a failed Kubernetes API call said, without headers or request details (they may carry tokens). */
export interface ApiFailure {
  /** HTTP status, or undefined for network errors. */
  readonly status: number | undefined;
  /** `reason` from the Status body (`Conflict`, `NotFound`, `Expired`, `Forbidden`, …). */
  readonly reason: string | undefined;
  /** `message` from the Status body, or the error message. */
  readonly message: string;
}

/** Reads an error from a Kubernetes API call (`KubeApiError`, connection failures, watch ERROR events). */
export function apiFailure(err: unknown): ApiFailure {
  const e = (err ?? {}) as { code?: unknown; statusCode?: unknown; body?: unknown; message?: unknown; cause?: unknown };
  const status = typeof e.code === 'number' ? e.code : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  let body = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  const b = (body ?? {}) as { reason?: unknown; message?: unknown };
  const cause = (e.cause as { code?: unknown; message?: unknown } | undefined) ?? undefined;
  const causeText = cause ? `: ${String(cause.code ?? cause.message ?? '')}` : '';
  const message =
    typeof b.message === 'string'
      ? b.message
      : String(e.message ?? err)
          .split('\n')[0]!
          .concat(causeText);
  return { status, reason: typeof b.reason === 'string' ? b.reason : undefined, message };
}

export const isNotFound = (err: unknown): boolean => apiFailure(err).status === 404;
export const isConflict = (err: unknown): boolean => apiFailure(err).status === 409;
/** 410 Gone: a watch or list resourceVersion is too old; the cache must relist. */
export const isGone = (err: unknown): boolean => apiFailure(err).status === 410;

/** Wraps an API failure as a retryable WarrenError naming the action, e.g. "update status of Ingress ns/x". */
export function kubernetesError(action: string, err: unknown): WarrenError {
  const f = apiFailure(err);
  return new WarrenError(ErrorCode.KubernetesApi, `${action}: ${f.status ?? 'network error'} ${f.reason ?? ''} ${f.message}`.replace(/\s+/g, ' ').trim(), {
    cause: err,
  });
}
