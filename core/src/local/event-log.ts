import type { Logger } from 'pino';
import type { EventObject, EventSink, Runnable } from '../plugin-api/lifecycle.js';
import type { RouteStore } from '../routes/store.js';
import type { Diagnostic } from '../routes/types.js';

/** An identical event is logged again at most once per this interval, as the cluster's Event recorder does. */
const DEFAULT_REPEAT_INTERVAL_MS = 10 * 60_000;
/** Most distinct events remembered for deduplication; the oldest are forgotten first. */
const MAX_REMEMBERED = 10_000;

export interface LocalEventLogOptions {
  /** Lines go here: Warning at `warn`, Normal at `info`, each with `reason` and `object` (and `file` when known). */
  readonly logger: Logger;
  /** The manifest file an object was read from (folder mode), for the log line. */
  readonly fileOf?: ((object: EventObject) => string | undefined) | undefined;
  /** Default 10 minutes. */
  readonly repeatIntervalMs?: number | undefined;
  readonly now?: (() => number) | undefined;
}

/**
 * Folder mode has no API server to record Events in: every Event the cluster would get is a log line instead,
 * with the same type, reason and message, naming the object and the file it came from. Identical events are
 * logged at most once per repeat interval, so a problem re-reported on every rebuild does not flood the log.
 */
export class LocalEventLog implements EventSink {
  readonly #o: LocalEventLogOptions;
  readonly #logged = new Map<string, number>();

  constructor(options: LocalEventLogOptions) {
    this.#o = options;
  }

  warning(object: EventObject, reason: string, message: string): void {
    if (this.#fresh('Warning', object, reason, message)) this.write('Warning', object, reason, message);
  }

  normal(object: EventObject, reason: string, message: string): void {
    if (this.#fresh('Normal', object, reason, message)) this.write('Normal', object, reason, message);
  }

  /** Logs one event now, whatever was logged before. */
  write(type: 'Normal' | 'Warning', object: EventObject, reason: string, message: string): void {
    const file = this.#o.fileOf?.(object);
    const fields = { event: type, reason, object: { kind: object.kind, namespace: object.namespace, name: object.name }, ...(file ? { file } : {}) };
    if (type === 'Warning') this.#o.logger.warn(fields, message);
    else this.#o.logger.info(fields, message);
  }

  #fresh(type: string, object: EventObject, reason: string, message: string): boolean {
    const key = `${type}\0${object.kind}\0${object.namespace ?? ''}\0${object.name}\0${reason}\0${message}`;
    const now = (this.#o.now ?? Date.now)();
    const last = this.#logged.get(key);
    if (last !== undefined && now - last < (this.#o.repeatIntervalMs ?? DEFAULT_REPEAT_INTERVAL_MS)) return false;
    this.#logged.delete(key);
    this.#logged.set(key, now);
    if (this.#logged.size > MAX_REMEMBERED) this.#logged.delete(this.#logged.keys().next().value!);
    return true;
  }
}

/**
 * The message of the Event a route-table diagnostic becomes in cluster mode: the diagnostic's message, with the
 * field appended when the message does not name it.
 */
function diagnosticEventMessage(d: Diagnostic): string {
  return d.field && !d.message.includes(d.field) ? `${d.message} (field ${d.field})` : d.message;
}

/**
 * Logs the problems of each new set that the set before it did not have, through the event log: fixing a manifest
 * and breaking it again logs the problem again, and an unchanged problem is not logged twice.
 */
export class NewProblemsLog {
  readonly #log: LocalEventLog;
  #previous = new Set<string>();

  constructor(log: LocalEventLog) {
    this.#log = log;
  }

  /** Logs the problems of `diagnostics` that the previous call did not have. */
  report(diagnostics: Iterable<Diagnostic>): void {
    const current = new Set<string>();
    for (const d of diagnostics) {
      const message = diagnosticEventMessage(d);
      const key = `${d.type}\0${d.object.kind}\0${d.object.namespace ?? ''}\0${d.object.name}\0${d.reason}\0${message}`;
      if (current.has(key)) continue;
      current.add(key);
      if (!this.#previous.has(key)) this.#log.write(d.type, d.object, d.reason, message);
    }
    this.#previous = current;
  }
}

/**
 * Folder mode's counterpart of the cluster's route Events: logs every diagnostic of a new route table that the
 * table before it did not have (so fixing a manifest and breaking it again logs the problem again, and an
 * unrelated rebuild logs nothing). Runs in every folder-mode process: the one process is the leader.
 */
export class RouteDiagnosticsLog implements Runnable {
  readonly needsLeader = false;
  readonly #store: RouteStore;
  readonly #log: LocalEventLog;

  constructor(store: RouteStore, log: LocalEventLog) {
    this.#store = store;
    this.#log = log;
  }

  async start(signal: AbortSignal): Promise<void> {
    const problems = new NewProblemsLog(this.#log);
    for await (const table of this.#store.changes(signal)) {
      if (table.generation === 0) continue;
      problems.report(table.diagnostics);
    }
  }
}
