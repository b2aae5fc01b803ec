import { pino, type DestinationStream, type Logger } from 'pino';

/** Log levels accepted by the `logLevel` setting. */
type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

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
const REDACTED_PATHS: readonly string[] = [
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
      serializers: { err: serializeError },
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

/** A child logger whose lines carry `component: <name>` (e.g. `informers`, `leader-election`, `status`). */
export function componentLogger(parent: Logger, component: string, bindings: Readonly<Record<string, unknown>> = {}): Logger {
  return parent.child({ component, ...bindings });
}

/** Links of a `cause` chain (and members of an AggregateError) written under an error. */
const MAX_ERROR_DEPTH = 4;
const MAX_AGGREGATED = 5;
/** Fields of an error copied into its log record when they are plain values (OS errors, WarrenError, API errors). */
const ERROR_FIELDS = ['code', 'status', 'statusCode', 'syscall', 'address', 'port', 'path', 'terminal'] as const;

/**
 * How `err` is written in a log record: `type` (for real errors), `message`, the error's code and the fields that
 * say what failed (OS errors: `syscall`, `address`, `port`), the `cause` chain as nested records, and the stack
 * only for unexpected errors — never for a WarrenError or an OS error, whose code and message say all there is.
 * A plain object (an error summary) keeps just its fields: no invented `"type":"Object"` or empty stack.
 */
function serializeError(err: unknown, depth = 0): Record<string, unknown> {
  if (err === null || typeof err !== 'object') return { message: String(err) };
  const e = err as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if (err instanceof Error) out.type = err.name || err.constructor?.name || 'Error';
  out.message = typeof e.message === 'string' ? e.message : String(err);
  for (const field of ERROR_FIELDS) {
    const value = e[field];
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[field] = value;
  }
  if (depth < MAX_ERROR_DEPTH) {
    if (e.cause !== undefined) out.cause = serializeError(e.cause, depth + 1);
    if (Array.isArray(e.errors) && e.errors.length > 0) out.errors = e.errors.slice(0, MAX_AGGREGATED).map((x: unknown) => serializeError(x, depth + 1));
  }
  const expected = typeof e.syscall === 'string' || (typeof e.code === 'string' && e.code.startsWith('WARREN_ERR_'));
  if (err instanceof Error && typeof err.stack === 'string' && !expected) out.stack = err.stack;
  return out;
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
