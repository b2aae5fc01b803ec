import { pino, type DestinationStream, type Logger } from 'pino';

/** Log levels accepted by the `logLevel` setting. */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerOptions {
  /** Minimum level written; `silent` writes nothing. */
  readonly level: LogLevel;
  /** Where JSON lines go; default stdout (synchronous writes, so nothing is lost on exit). */
  readonly destination?: DestinationStream | undefined;
  /** Fields on every line, e.g. `{ pod: 'warren-7d9…' }`. */
  readonly base?: Readonly<Record<string, unknown>> | undefined;
}

/**
 * Paths whose values are never written, wherever they occur one level deep: tokens, Secret payloads and
 * authorization headers. Defence in depth: code must not log them in the first place.
 */
export const REDACTED_PATHS: readonly string[] = [
  'token',
  '*.token',
  'apiToken',
  '*.apiToken',
  'tunnelSecret',
  '*.tunnelSecret',
  'secret',
  '*.secret',
  'data',
  '*.data',
  'stringData',
  '*.stringData',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
];

/**
 * Creates the root logger: pino JSON lines with `level` as a label, an ISO `time`, `msg`, and redaction of the
 * paths in {@link REDACTED_PATHS}. Components log through {@link componentLogger} children so every line says
 * where it came from.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { ...(options.base ?? {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

/** A child logger whose lines carry `component: <name>` (e.g. `informers`, `leader-election`, `status`). */
export function componentLogger(parent: Logger, component: string, bindings: Readonly<Record<string, unknown>> = {}): Logger {
  return parent.child({ component, ...bindings });
}

/**
 * A short, log-safe description of an error: the message and, for Kubernetes API errors, the HTTP status.
 * Never includes response bodies or request headers (they may echo tokens).
 */
export function errorSummary(err: unknown): { message: string; status?: number; code?: string } {
  if (err === null || typeof err !== 'object') return { message: String(err) };
  const e = err as { message?: unknown; code?: unknown; statusCode?: unknown };
  const out: { message: string; status?: number; code?: string } = { message: firstLine(String(e.message ?? err)) };
  if (typeof e.code === 'number') out.status = e.code;
  else if (typeof e.statusCode === 'number') out.status = e.statusCode;
  if (typeof e.code === 'string') out.code = e.code;
  return out;
}

function firstLine(text: string): string {
  const i = text.indexOf('\n');
  return i === -1 ? text : text.slice(0, i);
}
