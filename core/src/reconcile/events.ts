import type { CoreV1Event } from '@kubernetes/client-node';
import { apiPath, type KubeClient } from '../k8s/api/client.js';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { EventObject, EventSink } from '../plugin-api/lifecycle.js';
import type { Leadership } from '../state/leadership.js';
import type { Published } from '../state/published.js';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import { apiFailure, isConflict, isNotFound } from '../k8s/api-errors.js';

/** `source.component` and `reportingComponent` of Warren's Events. */
const EVENT_COMPONENT = 'warren';
const EVENT_REPORTING_CONTROLLER = 'warren.dev/ingress-controller';

/** Longest Event message written; longer ones are cut with an ellipsis (the API allows 1 KiB in events.k8s.io). */
const MAX_EVENT_MESSAGE = 1024;

export interface EventRecorderOptions {
  readonly client: KubeClient;
  readonly logger: Logger;
  readonly metrics?: ControlPlaneMetrics | undefined;
  /** `reportingInstance`: the holder identity of this replica. */
  readonly instance: string;
  /** Events are written only while this replica leads; others are dropped. */
  readonly leadership: Published<Leadership>;
  /**
   * An identical event (same object, type, reason and message) is written again — as a count/lastTimestamp
   * update of the same Event — at most once per this interval. Default 10 minutes.
   */
  readonly repeatIntervalMs?: number | undefined;
  /**
   * More distinct messages than this for one object and reason within `repeatIntervalMs` are combined into one
   * Event whose message starts with "(combined from similar events)", the form Kubernetes users know. Default 10.
   */
  readonly maxDistinctPerReason?: number | undefined;
  /** Per-object token bucket: burst and refill interval. Default 25 events, one more every 10 s. */
  readonly perObjectBurst?: number | undefined;
  readonly perObjectRefillMs?: number | undefined;
  /** Writes allowed to wait at once; beyond this, new events are dropped (and counted). Default 2,000. */
  readonly maxPending?: number | undefined;
  /** Clock, for tests. */
  readonly now?: (() => number) | undefined;
}

interface SeriesState {
  name: string;
  namespace: string;
  count: number;
  /** Occurrences not yet written (suppressed repeats), folded into the next write. */
  unsent: number;
  firstAt: number;
  writtenAt: number;
  message: string;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Records Kubernetes Events (core/v1, so `kubectl describe` shows them) and implements the plugin API's
 * {@link EventSink}. Only the leader writes: on other replicas calls are dropped.
 *
 * A broken Ingress cannot flood the API:
 *  - **deduplication**: the Event name is derived from (object uid, type, reason, message), so a repeat updates
 *    the same Event (`count`, `lastTimestamp`) instead of creating a new one — also across restarts and leader
 *    changes (a create that finds the Event patches it);
 *  - **repeat interval**: a repeat is written at most once per `repeatIntervalMs`; suppressed repeats are counted
 *    and folded into the next write. Route tables rebuilt on every EndpointSlice change re-report the same
 *    diagnostics, and those rebuilds cost no API calls;
 *  - **aggregation**: past `maxDistinctPerReason` distinct messages for one object and reason, further messages
 *    go into one "combined from similar events" Event;
 *  - **per-object rate limit**: a token bucket per object bounds writes whatever the messages.
 *
 * Writes are sequential and asynchronous; failures are logged and counted, never thrown to the caller.
 */
export class EventRecorder implements EventSink {
  readonly #o: EventRecorderOptions;
  readonly #series = new Map<string, SeriesState>();
  readonly #distinct = new Map<string, Map<string, number>>();
  readonly #buckets = new Map<string, Bucket>();
  #chain: Promise<void> = Promise.resolve();
  #pending = 0;
  #calls = 0;

  constructor(options: EventRecorderOptions) {
    this.#o = options;
  }

  warning(object: EventObject, reason: string, message: string): void {
    this.#record(object, 'Warning', reason, message);
  }

  normal(object: EventObject, reason: string, message: string): void {
    this.#record(object, 'Normal', reason, message);
  }

  /** Resolves when every write queued so far has finished (tests, shutdown). */
  flush(): Promise<void> {
    return this.#chain;
  }

  /** Writes queued and not yet finished. */
  get pending(): number {
    return this.#pending;
  }

  #record(object: EventObject, type: 'Normal' | 'Warning', reason: string, rawMessage: string): void {
    const metrics = this.#o.metrics;
    if (!this.#o.leadership.current.leading) {
      metrics?.events.inc({ type, outcome: 'dropped' });
      return;
    }
    const now = (this.#o.now ?? Date.now)();
    const interval = this.#o.repeatIntervalMs ?? 600_000;
    let message = truncate(rawMessage);
    const objectId = object.uid ?? `${object.kind}/${object.namespace ?? ''}/${object.name}`;

    // Aggregate many distinct messages of one reason into a single series.
    const reasonKey = `${objectId}|${type}|${reason}`;
    let distinct = this.#distinct.get(reasonKey);
    if (!distinct) this.#distinct.set(reasonKey, (distinct = new Map()));
    for (const [m, at] of distinct) if (now - at > interval) distinct.delete(m);
    if (!distinct.has(message) && distinct.size >= (this.#o.maxDistinctPerReason ?? 10)) {
      message = truncate(`(combined from similar events): ${rawMessage}`);
      metrics?.events.inc({ type, outcome: 'combined' });
    } else {
      distinct.set(message, now);
    }

    const seriesKey = `${objectId}|${type}|${reason}|${message.startsWith('(combined') ? '(combined)' : message}`;
    let series = this.#series.get(seriesKey);
    this.#prune(now, interval);
    if (series && now - series.writtenAt < interval) {
      series.unsent++;
      series.message = message;
      metrics?.events.inc({ type, outcome: 'suppressed' });
      return;
    }
    if (this.#pending >= (this.#o.maxPending ?? 2_000) || !this.#take(objectId, now)) {
      if (series) series.unsent++;
      metrics?.events.inc({ type, outcome: 'rate-limited' });
      return;
    }
    if (!series) {
      series = {
        name: eventName(object.name, seriesKey),
        namespace: object.namespace || 'default',
        count: 0,
        unsent: 0,
        firstAt: now,
        writtenAt: now,
        message,
      };
      this.#series.set(seriesKey, series);
    }
    series.count += 1 + series.unsent;
    series.unsent = 0;
    series.writtenAt = now;
    series.message = message;
    const write = { ...series };
    const live = series;
    this.#enqueue(() => this.#write(object, type, reason, write, now, live));
  }

  #enqueue(task: () => Promise<void>): void {
    this.#pending++;
    this.#chain = this.#chain.then(task).finally(() => void this.#pending--);
  }

  async #write(object: EventObject, type: 'Normal' | 'Warning', reason: string, s: SeriesState, now: number, live: SeriesState): Promise<void> {
    const metrics = this.#o.metrics;
    const lastTimestamp = new Date(now);
    try {
      if (s.count > 1) {
        try {
          await this.#patch(s, lastTimestamp);
          metrics?.events.inc({ type, outcome: 'aggregated' });
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err; // expired (Event TTL) or never created: create it below
        }
      }
      const body: CoreV1Event = {
        metadata: { name: s.name, namespace: s.namespace },
        involvedObject: {
          apiVersion: apiVersionOf(object.kind),
          kind: object.kind,
          name: object.name,
          namespace: object.namespace,
          uid: object.uid,
        },
        type,
        reason,
        message: s.message,
        count: s.count,
        firstTimestamp: new Date(s.firstAt),
        lastTimestamp,
        source: { component: EVENT_COMPONENT },
        reportingComponent: EVENT_REPORTING_CONTROLLER,
        reportingInstance: this.#o.instance.slice(0, 128),
      };
      try {
        await this.#o.client.post(apiPath('v1', 'events', s.namespace), body);
        metrics?.events.inc({ type, outcome: 'created' });
      } catch (err) {
        if (!isConflict(err)) throw err;
        // Written before (another leader, or before a restart): count on from there.
        const previous = await this.#patch(s, lastTimestamp, false);
        const base = previous.count ?? 1;
        live.count += base;
        await this.#patch({ ...s, count: base + s.count }, lastTimestamp);
        metrics?.events.inc({ type, outcome: 'aggregated' });
      }
    } catch (err) {
      if ((err as Error | undefined)?.name === 'NotLeaderError') {
        // Fenced: leadership ended after the Event was queued. The next leader reports what still holds.
        metrics?.events.inc({ type, outcome: 'dropped' });
        this.#o.logger.debug({ event: `${s.namespace}/${s.name}`, reason }, 'Event not written: no longer the leader');
        return;
      }
      metrics?.events.inc({ type, outcome: 'failed' });
      this.#o.logger.warn({ event: `${s.namespace}/${s.name}`, reason, err: apiFailure(err) }, 'could not write a Kubernetes Event');
    }
  }

  /**
   * Merge-patches `lastTimestamp`, `message` and (unless `withCount` is false) `count`; returns the Event as
   * stored. RBAC grants create and patch only, so an existing Event's count is learnt from a patch response.
   */
  #patch(s: SeriesState, lastTimestamp: Date, withCount = true): Promise<CoreV1Event> {
    const body: Record<string, unknown> = { lastTimestamp: lastTimestamp.toISOString(), message: s.message };
    if (withCount) body.count = s.count;
    return this.#o.client.patch<CoreV1Event>(apiPath('v1', 'events', s.namespace, s.name), body, 'merge');
  }

  #take(objectId: string, now: number): boolean {
    const burst = this.#o.perObjectBurst ?? 25;
    const refill = this.#o.perObjectRefillMs ?? 10_000;
    let b = this.#buckets.get(objectId);
    if (!b) this.#buckets.set(objectId, (b = { tokens: burst, at: now }));
    const earned = Math.floor((now - b.at) / refill);
    if (earned > 0) {
      b.tokens = Math.min(burst, b.tokens + earned);
      b.at += earned * refill;
    }
    if (b.tokens <= 0) return false;
    b.tokens--;
    return true;
  }

  /**
   * Every 1,000 calls, forgets state idle for longer than a few intervals (series, per-reason message sets, full
   * buckets), so memory stays bounded when objects come and go.
   */
  #prune(now: number, interval: number): void {
    if (++this.#calls % 1_000 !== 0) return;
    for (const [k, s] of this.#series) if (now - s.writtenAt > 3 * interval) this.#series.delete(k);
    for (const [k, d] of this.#distinct) {
      for (const [m, at] of d) if (now - at > interval) d.delete(m);
      if (d.size === 0) this.#distinct.delete(k);
    }
    const full = (this.#o.perObjectBurst ?? 25) * (this.#o.perObjectRefillMs ?? 10_000);
    for (const [k, b] of this.#buckets) if (now - b.at > full) this.#buckets.delete(k);
  }
}

/** `<object name>.<16 hex>`; deterministic per series so repeats find the same Event. At most 253 characters. */
function eventName(objectName: string, seriesKey: string): string {
  const hash = createHash('sha256').update(seriesKey).digest('hex').slice(0, 16);
  return `${objectName.slice(0, 253 - 17)}.${hash}`;
}

function apiVersionOf(kind: string): string {
  switch (kind) {
    case 'Ingress':
    case 'IngressClass':
      return 'networking.k8s.io/v1';
    case 'EndpointSlice':
      return 'discovery.k8s.io/v1';
    case 'GatewayClass':
    case 'Gateway':
    case 'HTTPRoute':
    case 'GRPCRoute':
    case 'BackendTLSPolicy':
      return 'gateway.networking.k8s.io/v1';
    case 'ReferenceGrant':
      return 'gateway.networking.k8s.io/v1beta1';
    default:
      return 'v1';
  }
}

function truncate(message: string): string {
  return message.length <= MAX_EVENT_MESSAGE ? message : `${message.slice(0, MAX_EVENT_MESSAGE - 1)}…`;
}
