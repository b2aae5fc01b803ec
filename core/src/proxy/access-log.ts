import type { Logger } from 'pino';

/** One access-log record. Paths are logged without their query string (queries often carry tokens). */
export interface AccessRecord {
  readonly id: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly status: number;
  readonly durationMs: number;
  readonly route: string | undefined;
  readonly upstream: string | undefined;
  readonly attempts: number;
  readonly error: string | undefined;
  readonly clientAddress: string | undefined;
}

export interface AccessLogSettings {
  readonly enabled: boolean;
  /** Fraction of exchanges logged, 0–1. */
  readonly sampleRate: number;
}

export type AccessLog = (record: AccessRecord) => void;

/** Structured access log through pino at `info`, sampled per exchange (setting `proxy.accessLog`). */
export function createAccessLog(logger: Logger, settings: AccessLogSettings): AccessLog | undefined {
  if (!settings.enabled || settings.sampleRate <= 0) return undefined;
  const log = logger.child({ component: 'access' });
  const rate = settings.sampleRate;
  return function accessLog(record) {
    if (rate < 1 && Math.random() >= rate) return;
    const q = record.path.indexOf('?');
    log.info(
      {
        id: record.id,
        method: record.method,
        host: record.host,
        path: q === -1 ? record.path : record.path.slice(0, q),
        status: record.status,
        ms: Math.round(record.durationMs * 1000) / 1000,
        route: record.route,
        upstream: record.upstream,
        attempts: record.attempts,
        ...(record.error ? { error: record.error } : {}),
        client: record.clientAddress,
      },
      'request',
    );
  };
}
