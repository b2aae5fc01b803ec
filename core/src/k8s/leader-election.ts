import { apiPath, type KubeClient } from './api/client.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import { apiFailure, isConflict, isNotFound } from './api-errors.js';

export interface LeaderElectionOptions {
  readonly client: KubeClient;
  /** Namespace of the Lease (setting `kubernetes.leaderElection.leaseNamespace`, else the pod namespace). */
  readonly namespace: string;
  /** Lease name (setting `kubernetes.leaderElection.leaseName`). */
  readonly name: string;
  /** This replica's holder identity; unique per process (see {@link holderIdentity}). */
  readonly identity: string;
  /** How long a Lease stays valid without renewal (followers wait this long after the last observed change). */
  readonly leaseDurationMs: number;
  /** How long the leader keeps retrying renewal before it steps down. Must be < leaseDurationMs. */
  readonly renewDeadlineMs: number;
  /** Interval between acquire attempts and between renewals. */
  readonly retryPeriodMs: number;
  /** Release the Lease when stopped (default true), so a follower takes over at once. */
  readonly releaseOnCancel?: boolean | undefined;
  readonly logger: Logger;
  readonly metrics?: ControlPlaneMetrics | undefined;
}

/** Leadership change callback: `true` when this replica became leader, `false` when it stopped leading. */
export type LeadershipListener = (leading: boolean) => void;

/**
 * A unique holder identity: the pod name (env `POD_NAME`, else the host name) plus a random suffix, so two
 * processes in one pod (or a restarted container) never mistake each other's Lease for their own.
 */
export function holderIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return `${env.POD_NAME || hostname()}_${randomBytes(4).toString('hex')}`;
}

/**
 * Leader election on a `coordination.k8s.io/v1` Lease with client-go's semantics:
 *
 *  - acquire: create the Lease, or take it over when its holder is empty or the record has not changed for
 *    `leaseDurationSeconds` as measured on *this* replica's clock since it last saw the record change (no clock
 *    comparison across machines); taking it over sets `acquireTime` and increments `leaseTransitions`;
 *  - every write is a compare-and-swap on `metadata.resourceVersion`, so two candidates never both win;
 *  - the leader renews every `retryPeriod`; if no renewal succeeds within `renewDeadline` it steps down (stops
 *    leader-only work) before its Lease can expire and another replica takes over;
 *  - on a graceful stop the leader releases the Lease (empty holder, duration 1 s).
 *
 * One improvement over client-go: followers also watch the Lease, so a released Lease is taken over within
 * one round trip instead of after the next retry period.
 *
 * Listeners run synchronously on each transition; leader-only work must start on `true` and stop on `false`.
 */
export class LeaderElector {
  readonly identity: string;
  readonly #o: LeaderElectionOptions;
  readonly #path: string;
  readonly #listeners = new Set<LeadershipListener>();
  #leading = false;
  #lease: Lease | undefined;
  #observed: { holder: string; renew: string; acquire: string; transitions: number; durationS: number } | undefined;
  #observedAt = 0;
  #wake: (() => void) | undefined;
  #leader: string | undefined;

  constructor(options: LeaderElectionOptions) {
    if (options.renewDeadlineMs >= options.leaseDurationMs) {
      throw new RangeError(`renewDeadline (${options.renewDeadlineMs} ms) must be shorter than leaseDuration (${options.leaseDurationMs} ms)`);
    }
    this.#o = options;
    this.identity = options.identity;
    this.#path = apiPath('coordination.k8s.io/v1', 'leases', options.namespace, options.name);
  }

  /** True while this replica holds the Lease. */
  get isLeader(): boolean {
    return this.#leading;
  }

  /** The holder this replica last observed (possibly itself), if any. */
  get leader(): string | undefined {
    return this.#leader;
  }

  /** Subscribes to leadership transitions; returns an unsubscribe function. */
  onChange(listener: LeadershipListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Campaigns for leadership and renews it until `signal` aborts; then steps down and (unless
   * `releaseOnCancel` is false) releases the Lease. Never rejects; API errors are retried.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { logger, retryPeriodMs } = this.#o;
    logger.info({ identity: this.identity, lease: `${this.#o.namespace}/${this.#o.name}` }, 'starting leader election');
    const watcher = new AbortController();
    const onAbort = (): void => {
      watcher.abort();
      this.#wake?.();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    void this.#watchLease(watcher.signal);
    try {
      while (!signal.aborted) {
        // Campaign: try now, then every retryPeriod (jittered as client-go does), or as soon as the watch says the
        // Lease changed.
        if (!(await this.#tryAcquireOrRenew(this.#o.renewDeadlineMs))) {
          await this.#pause(retryPeriodMs * (1 + Math.random() * 0.2), signal);
          continue;
        }
        this.#setLeading(true);
        await this.#renewLoop(signal);
        this.#setLeading(false);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      watcher.abort();
      if (this.#leading) this.#setLeading(false);
      if (this.#o.releaseOnCancel ?? true) await this.#release();
    }
  }

  /** Renews every retryPeriod; returns when renewal failed for renewDeadline or `signal` aborted. */
  async #renewLoop(signal: AbortSignal): Promise<void> {
    const { retryPeriodMs, renewDeadlineMs, logger } = this.#o;
    while (!signal.aborted) {
      await sleep(retryPeriodMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      const deadline = Date.now() + renewDeadlineMs;
      let renewed = false;
      while (!signal.aborted && Date.now() < deadline) {
        if (await this.#tryAcquireOrRenew(deadline - Date.now())) {
          renewed = true;
          break;
        }
        if (this.#observed && this.#observed.holder !== this.identity && this.#observed.holder !== '') break; // someone else took it
        await sleep(Math.min(retryPeriodMs, Math.max(0, deadline - Date.now())), undefined, { signal }).catch(() => undefined);
      }
      if (signal.aborted) return;
      if (!renewed) {
        logger.warn({ identity: this.identity, holder: this.#observed?.holder }, 'failed to renew the leader Lease within renewDeadline; stepping down');
        return;
      }
    }
  }

  /** One acquire-or-renew attempt (client-go `tryAcquireOrRenew`). Resolves false on any failure. */
  async #tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const now = Date.now();
    const desired = (prev: LeaseSpec | undefined): LeaseSpec => {
      const mine = prev?.holderIdentity === this.identity;
      return {
        holderIdentity: this.identity,
        leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
        acquireTime: mine && prev?.acquireTime ? prev.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: mine ? (prev?.leaseTransitions ?? 0) : (prev?.leaseTransitions ?? 0) + (prev ? 1 : 0),
      };
    };
    try {
      // Fast path: the leader renews its cached object without reading it first (conflict → slow path).
      if (this.#leading && this.#lease && this.#isLeaseValid(now)) {
        try {
          const updated = await withTimeout(this.#replace({ ...this.#lease, spec: desired(this.#lease.spec) }), timeoutMs);
          this.#remember(updated, now);
          return true;
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
      let lease: Lease;
      try {
        lease = await withTimeout(this.#o.client.get<Lease>(this.#path, { timeoutMs }), timeoutMs);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const created = await withTimeout(
          this.#o.client.post<Lease>(
            apiPath('coordination.k8s.io/v1', 'leases', this.#o.namespace),
            { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.#o.name, namespace: this.#o.namespace }, spec: desired(undefined) },
            { timeoutMs },
          ),
          timeoutMs,
        );
        this.#remember(created, now);
        return true;
      }
      this.#observe(lease, now);
      const holder = lease.spec?.holderIdentity ?? '';
      if (holder !== '' && holder !== this.identity && this.#isLeaseValid(now)) return false;
      const updated = await withTimeout(this.#replace({ ...lease, spec: desired(lease.spec) }), timeoutMs);
      this.#remember(updated, now);
      return true;
    } catch (err) {
      if (!isConflict(err)) this.#o.logger.debug({ err: apiFailure(err) }, 'leader election attempt failed');
      return false;
    }
  }

  #replace(lease: Lease): Promise<Lease> {
    return this.#o.client.put<Lease>(this.#path, lease, { timeoutMs: this.#o.renewDeadlineMs });
  }

  /** Gives the Lease up: empty holder and a 1 s duration, so any follower may take it at once. */
  async #release(): Promise<void> {
    if (!this.#lease || this.#lease.spec?.holderIdentity !== this.identity) return;
    const now = microTime(Date.now());
    try {
      await withTimeout(
        this.#replace({
          ...this.#lease,
          spec: { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: this.#lease.spec?.leaseTransitions ?? 0 },
        }),
        this.#o.renewDeadlineMs,
      );
      this.#lease = undefined;
      this.#o.logger.info({ identity: this.identity }, 'released the leader Lease');
    } catch (err) {
      this.#o.logger.warn({ err: apiFailure(err) }, 'could not release the leader Lease; it expires after leaseDuration');
    }
  }

  #remember(lease: Lease, now: number): void {
    this.#lease = lease;
    this.#observe(lease, now);
  }

  /** Records the Lease record and, when it changed, the local time of the change (client-go `observedTime`). */
  #observe(lease: Lease, now: number): void {
    const s = lease.spec ?? {};
    const record = {
      holder: s.holderIdentity ?? '',
      renew: s.renewTime ?? '',
      acquire: s.acquireTime ?? '',
      transitions: s.leaseTransitions ?? 0,
      durationS: s.leaseDurationSeconds ?? Math.ceil(this.#o.leaseDurationMs / 1000),
    };
    const o = this.#observed;
    if (!o || o.holder !== record.holder || o.renew !== record.renew || o.acquire !== record.acquire || o.transitions !== record.transitions || o.durationS !== record.durationS) {
      this.#observed = record;
      this.#observedAt = now;
      if (record.holder !== this.#leader) {
        this.#leader = record.holder || undefined;
        if (record.holder && record.holder !== this.identity) this.#o.logger.info({ leader: record.holder }, 'observed a new leader');
      }
    }
  }

  #isLeaseValid(now: number): boolean {
    return this.#observed !== undefined && this.#observedAt + this.#observed.durationS * 1000 > now;
  }

  #setLeading(leading: boolean): void {
    if (this.#leading === leading) return;
    this.#leading = leading;
    this.#o.metrics?.leader.set(leading ? 1 : 0);
    this.#o.metrics?.leaderTransitions.inc({ event: leading ? 'acquired' : 'lost' });
    this.#o.logger.info({ identity: this.identity }, leading ? 'became leader' : 'stopped leading');
    for (const listener of this.#listeners) {
      try {
        listener(leading);
      } catch (err) {
        this.#o.logger.error({ err }, 'a leadership listener threw');
      }
    }
  }

  async #pause(ms: number, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
      if (signal.aborted) done();
    });
    this.#wake = undefined;
  }

  /**
   * Watches the Lease while campaigning, waking the acquire loop on every change: a released Lease (empty
   * holder) or a deleted one is taken over without waiting for the retry period.
   */
  async #watchLease(signal: AbortSignal): Promise<void> {
    let failures = 0;
    const collection = apiPath('coordination.k8s.io/v1', 'leases', this.#o.namespace);
    const query = { fieldSelector: `metadata.name=${this.#o.name}`, timeoutSeconds: 300 + Math.floor(Math.random() * 300) };
    while (!signal.aborted) {
      const started = Date.now();
      let failed: boolean;
      try {
        const end = await this.#o.client.watch(
          collection,
          query,
          (type, obj) => {
            failures = 0;
            if (this.#leading) return;
            const holder = (obj as Lease | undefined)?.spec?.holderIdentity ?? '';
            if (type === 'DELETED' || holder === '') this.#wake?.();
          },
          { signal },
        );
        if (end === 'aborted') return;
        failed = Date.now() - started < 1_000; // a stream that ends at once is a failure too: never spin
      } catch (err) {
        if (signal.aborted) return;
        failed = true;
        this.#o.logger.debug({ err: apiFailure(err) }, 'Lease watch failed; retrying');
      }
      if (failed) {
        failures++;
        await sleep(Math.min(30_000, 500 * 2 ** Math.min(failures, 6)), undefined, { signal }).catch(() => undefined);
      }
    }
  }
}

/** The parts of a coordination.k8s.io/v1 Lease that election reads and writes, as JSON (times are MicroTime strings). */
interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** A metav1.MicroTime: RFC 3339 in UTC with six fractional digits, e.g. `2026-11-26T17:32:58.123000Z`. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Lease request timed out after ${Math.round(ms)} ms`)), Math.max(1, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
