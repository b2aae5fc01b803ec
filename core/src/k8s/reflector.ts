import type { KubernetesObject } from '@kubernetes/client-node';
import type { KubeClient } from './api/client.js';
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import { apiFailure, isGone } from './api-errors.js';
import { objectKey, trimForCache, type KindSpec } from './kinds.js';
import type { ObjectStore, StoreChange } from './object-store.js';

export interface ReflectorOptions<T extends KubernetesObject> {
  readonly spec: KindSpec<T>;
  /** Watch one namespace; undefined watches the whole cluster (or a cluster-scoped kind). */
  readonly namespace?: string | undefined;
  readonly store: ObjectStore<T>;
  readonly client: KubeClient;
  readonly logger: Logger;
  readonly metrics?: ControlPlaneMetrics | undefined;
  /** Called synchronously after each applied batch (one watch event, or one whole relist) with what changed. */
  readonly onChange: (changes: ReadonlyMap<string, StoreChange>) => void;
  /**
   * Whether an object is kept in the store. Objects not kept are removed if present. Default: keep all. Used by
   * the Secret cache, which holds only Secrets that routes reference.
   */
  readonly keep?: ((key: string, obj: T) => boolean) | undefined;
  /** Sees every watch event's type and key before it is applied (even for objects the store does not keep). */
  readonly observe?: ((type: 'ADDED' | 'MODIFIED' | 'DELETED', key: string) => void) | undefined;
  /** Objects per list page. Default 500. */
  readonly pageSize?: number | undefined;
  /** Bound on one list page call; a hung apiserver then counts as a failure. Default 60 s. */
  readonly listTimeoutMs?: number | undefined;
  /** Backoff after failures: first delay and cap. Default 500 ms and 30 s, with ±20 % jitter. */
  readonly backoffMs?: { readonly initial: number; readonly max: number } | undefined;
  /**
   * Cap of the backoff while the apiserver cannot be reached at all (connection refused or reset: no HTTP answer).
   * Such a retry costs nothing, and a long one would leave the cache blind for that long after the apiserver is
   * back (a restart). Default 4 s.
   */
  readonly unreachableBackoffMaxMs?: number | undefined;
  /**
   * How long 403 Forbidden answers count as transient once the cache had synced: a restarted apiserver refuses
   * requests while its authorization cache warms up, so within this window after the first 403 the reflector
   * retries after the first backoff delay instead of backing off exponentially. Default 15 s.
   */
  readonly forbiddenGraceMs?: number | undefined;
}

interface WatchOutcome {
  readonly resourceVersion: string;
  readonly gone: boolean;
  readonly error: unknown;
  readonly events: number;
  readonly durationMs: number;
}

/**
 * Keeps one kind's {@link ObjectStore} in step with the API server (list, then watch):
 *
 *  1. list (paginated) and apply the result as one diff — objects missing from the list are deleted;
 *  2. watch from the list's resourceVersion with bookmarks, applying each event as it arrives;
 *  3. when the watch ends (server timeout, idle timeout, dropped connection) resume from the last seen
 *     resourceVersion; on 410 Gone (history compacted) go back to 1;
 *  4. on errors (apiserver down, 5xx, network) retry with jittered exponential backoff, for ever, until stopped.
 *
 * Warren's own rather than client-node's ListWatch, which stops for good on the first non-410 error, does not
 * paginate, keeps a second copy of every object and cannot drop objects (Secrets) as they arrive.
 */
export class Reflector<T extends KubernetesObject> {
  readonly #o: ReflectorOptions<T>;
  readonly #label: string;
  #synced = false;
  #syncWaiters: Array<() => void> = [];
  #relistRequested = false;
  #abortWatch: (() => void) | undefined;
  /** When the current run of 403 answers began (undefined: the last call was not refused). */
  #forbiddenSince: number | undefined;

  constructor(options: ReflectorOptions<T>) {
    this.#o = options;
    this.#label = options.namespace ? `${options.spec.kind} in ${options.namespace}` : options.spec.kind;
  }

  /** True once the first list has been applied. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves once the first list has been applied, or when `signal` aborts. */
  whenSynced(signal?: AbortSignal): Promise<void> {
    if (this.#synced || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      this.#syncWaiters.push(resolve);
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  /** Drops the current watch and lists again (e.g. after the set of kept objects grew). */
  requestRelist(): void {
    this.#relistRequested = true;
    this.#abortWatch?.();
  }

  /** Lists and watches until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    const { logger, metrics, spec } = this.#o;
    let resourceVersion = '';
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (this.#relistRequested) {
          this.#relistRequested = false;
          resourceVersion = '';
        }
        if (!resourceVersion) {
          resourceVersion = await this.#list(signal);
          failures = 0;
          this.#forbiddenSince = undefined;
          if (signal.aborted) break;
        }
        const outcome = await this.#watch(resourceVersion, signal);
        if (signal.aborted) break;
        resourceVersion = outcome.gone ? '' : outcome.resourceVersion;
        const cause = outcome.gone ? 'gone' : outcome.error ? 'error' : 'ended';
        metrics?.informerRestarts.inc({ kind: spec.kind, cause });
        if (cause === 'error' || (outcome.events === 0 && outcome.durationMs < 1_000 && !this.#relistRequested)) {
          if (cause === 'error' && this.#transientForbidden(outcome.error)) {
            logger.warn({ kind: spec.kind, namespace: this.#o.namespace, err: apiFailure(outcome.error) }, 'watch refused (403) right after a reconnect; retrying shortly');
            await this.#backoff(1, signal);
            continue;
          }
          failures++;
          if (cause === 'error')
            logger.warn({ kind: spec.kind, namespace: this.#o.namespace, err: apiFailure(outcome.error), failures }, 'watch failed; resuming after backoff');
          await this.#backoff(failures, signal, cause === 'error' && unreachable(outcome.error));
        } else {
          failures = 0;
          this.#forbiddenSince = undefined;
          logger.debug({ kind: spec.kind, namespace: this.#o.namespace, cause, events: outcome.events }, 'watch ended; resuming');
        }
      } catch (err) {
        if (signal.aborted) break;
        if (isGone(err)) resourceVersion = '';
        if (this.#transientForbidden(err)) {
          logger.warn({ kind: spec.kind, namespace: this.#o.namespace, err: apiFailure(err) }, 'list refused (403) right after a reconnect; retrying shortly');
          await this.#backoff(1, signal);
          continue;
        }
        failures++;
        logger.warn({ kind: spec.kind, namespace: this.#o.namespace, err: apiFailure(err), failures }, 'list failed; retrying after backoff');
        await this.#backoff(failures, signal, unreachable(err));
      }
    }
    this.#resolveSync();
  }

  async #list(signal: AbortSignal): Promise<string> {
    const { spec, store, metrics } = this.#o;
    const keep = this.#o.keep;
    const objects = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await withTimeout(
        spec.list({ namespace: this.#o.namespace, limit: Math.min(this.#o.pageSize ?? 500, spec.maxPageSize ?? Infinity), continueToken, fieldSelector: spec.fieldSelector }),
        this.#o.listTimeoutMs ?? 60_000,
        signal,
        `list ${this.#label}`,
      );
      if (signal.aborted) return '';
      for (const item of page.items ?? []) {
        trimForCache(item);
        const key = objectKey(item, spec.namespaced);
        if (!keep || keep(key, item)) objects.set(key, item);
      }
      resourceVersion = page.metadata?.resourceVersion ?? '';
      continueToken = (page.metadata as { continue?: string } | undefined)?.continue || undefined;
    } while (continueToken);
    const ns = this.#o.namespace;
    const changes = store.replace(objects, ns ? (key) => key.startsWith(`${ns}/`) : () => true);
    metrics?.informerEvents.inc({ kind: spec.kind, type: 'RELIST' });
    metrics?.informerObjects.set({ kind: spec.kind }, store.size);
    const first = !this.#synced;
    this.#synced = true;
    if (changes.size > 0 || first) this.#o.onChange(changes);
    this.#resolveSync();
    this.#o.logger.debug({ kind: spec.kind, namespace: ns, objects: objects.size, changes: changes.size, resourceVersion }, 'listed');
    return resourceVersion;
  }

  async #watch(resourceVersion: string, signal: AbortSignal): Promise<WatchOutcome> {
    const { spec, store, metrics, client } = this.#o;
    const keep = this.#o.keep;
    const started = Date.now();
    let lastVersion = resourceVersion;
    let gone = false;
    let statusError: unknown;
    let events = 0;
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    signal.addEventListener('abort', abort, { once: true });
    this.#abortWatch = abort;
    const onEvent = (type: string, raw: unknown): void => {
      events++;
      const obj = raw as T | undefined;
      const version = obj?.metadata?.resourceVersion;
      if (type === 'ERROR') {
        const status = raw as { code?: number; reason?: string; message?: string } | undefined;
        if (status?.code === 410) gone = true;
        else statusError = { code: status?.code, body: status, message: status?.message ?? 'watch error event' };
        controller.abort(); // the server ends the stream after an ERROR event; do not wait for it
        return;
      }
      metrics?.informerEvents.inc({ kind: spec.kind, type });
      if (type === 'BOOKMARK') {
        if (version) lastVersion = version;
        return;
      }
      if (!obj || typeof obj !== 'object' || !obj.metadata?.name) {
        this.#o.logger.warn({ kind: spec.kind, type }, 'ignored a watch event without an object name');
        return;
      }
      trimForCache(obj);
      if (version) lastVersion = version;
      const key = objectKey(obj, spec.namespaced);
      if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') this.#o.observe?.(type, key);
      let change: StoreChange | undefined;
      if (type === 'DELETED' || (keep && !keep(key, obj))) change = store.delete(key);
      else if (type === 'ADDED' || type === 'MODIFIED') change = store.upsert(key, obj);
      if (change) {
        metrics?.informerObjects.set({ kind: spec.kind }, store.size);
        this.#o.onChange(new Map([[key, change]]));
      }
    };
    let error: unknown;
    try {
      const query = {
        resourceVersion,
        allowWatchBookmarks: true,
        // 5–10 minutes at random, so that many clients do not reconnect in step.
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
        fieldSelector: spec.fieldSelector,
      };
      // Idle bound: bookmarks arrive about once a minute, so a silent stream for longer means a dead connection.
      await client.watch(spec.watchPath(this.#o.namespace), query, onEvent, { signal: controller.signal, idleTimeoutMs: 150_000 });
    } catch (err) {
      error = err;
    } finally {
      signal.removeEventListener('abort', abort);
      this.#abortWatch = undefined;
    }
    return { resourceVersion: lastVersion, gone: gone || isGone(error), error: error ?? statusError, events, durationMs: Date.now() - started };
  }

  /**
   * True for a 403 within `forbiddenGraceMs` of the first 403 of a run, once the cache had synced: the rights
   * were there a moment ago, so the refusal is most likely a restarted apiserver's authorizer warming up. A 403
   * before the first sync, or one that persists past the grace, takes the normal exponential backoff.
   */
  #transientForbidden(err: unknown): boolean {
    if (apiFailure(err).status !== 403) {
      this.#forbiddenSince = undefined;
      return false;
    }
    if (!this.#synced) return false;
    const now = Date.now();
    this.#forbiddenSince ??= now;
    return now - this.#forbiddenSince < (this.#o.forbiddenGraceMs ?? 15_000);
  }

  async #backoff(failures: number, signal: AbortSignal, noAnswer = false): Promise<void> {
    const { initial, max: cap } = this.#o.backoffMs ?? { initial: 500, max: 30_000 };
    const max = noAnswer ? Math.min(cap, this.#o.unreachableBackoffMaxMs ?? 4_000) : cap;
    const base = Math.min(max, initial * 2 ** Math.min(failures - 1, 20));
    const delay = base * (0.8 + Math.random() * 0.4);
    await sleep(delay, undefined, { signal }).catch(() => undefined);
  }

  #resolveSync(): void {
    const waiters = this.#syncWaiters;
    this.#syncWaiters = [];
    for (const w of waiters) w();
  }
}

/** No HTTP answer at all: the connection was refused, reset or closed (an apiserver that is down or restarting). */
function unreachable(err: unknown): boolean {
  return apiFailure(err).status === undefined && !/timed out/.test(apiFailure(err).message);
}

async function withTimeout<R>(promise: Promise<R>, ms: number, signal: AbortSignal, what: string): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
        onAbort = () => reject(new Error(`${what} aborted`));
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
