import { apiPath, type KubeClient, type WriteFence } from './api/client.js';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import { apiFailure, isConflict, isNotFound } from './api-errors.js';
import { sameLeadership, type Leadership } from '../state/leadership.js';
import { PublishedValue, type Published } from '../state/published.js';

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

/**
 * A unique holder identity: the pod name (env `POD_NAME`, else the host name) plus a random suffix, so two
 * processes in one pod (or a restarted container) never mistake each other's Lease for their own.
 */
export function holderIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return `${env.POD_NAME || hostname()}_${randomBytes(4).toString('hex')}`;
}

/** A leader-only write refused because this replica does not (or no longer) hold the Lease. */
export class NotLeaderError extends Error {
  override readonly name = 'NotLeaderError';
}

/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with the semantics Kubernetes' own controllers use:
 *
 *  - acquire: create the Lease, or take it over when its holder is empty or the record has not changed for
 *    `leaseDurationSeconds` as measured on *this* replica's clock since it last saw the record change (no clock
 *    comparison across machines); taking it over sets `acquireTime` and increments `leaseTransitions`;
 *  - every write is a compare-and-swap on `metadata.resourceVersion`, so two candidates never both win;
 *  - the leader renews every `retryPeriod`; a leader whose last successful renewal was *sent* `renewDeadline`
 *    ago steps down — before any follower may take the Lease over, since followers count `leaseDuration`
 *    (longer) from when they *saw* that renewal, which is later;
 *  - on a graceful stop the leader releases the Lease (empty holder, duration 1 s).
 *
 * Beyond those, every replica watches the Lease all the time: followers take a released Lease within one
 * round trip, and the leader steps down the moment it sees its Lease deleted or naming another holder, before it
 * does anything else. A Lease deleted while another replica held it validly is re-created by a follower only 1.5
 * retry periods after the deletion: the old holder sees the deletion through its watch or, at the latest, through
 * its next renewal, so it has stopped writing before anyone else leads; a replica that finds the Lease gone without
 * a watch event waits `leaseDuration` instead. A replica that lost its Lease waits two
 * retry periods before it campaigns again, so the follower normally takes over.
 *
 * Leader-only writes go through {@link fence}: a write is sent only while this replica leads *and* its last
 * renewal is younger than `renewDeadline` (a process resumed after a freeze refuses to write before it has even
 * read its sockets), and the term's signal aborts it when the term ends.
 *
 * {@link leadership} is published synchronously on each transition, after the fence has closed and the term's signal
 * aborted; leader-only work must start when it leads and stop when it does not.
 */
export class LeaderElector {
  readonly identity: string;
  readonly #o: LeaderElectionOptions;
  readonly #path: string;
  readonly #leadership = new PublishedValue<Leadership>(
    { leading: false, term: 0 },
    {
      same: sameLeadership,
      onListenerError: (err) => this.#o.logger.error({ err }, 'a leadership listener threw'),
    },
  );
  #leading = false;
  #lease: Lease | undefined;
  #observed: { holder: string; renew: string; acquire: string; transitions: number; durationS: number } | undefined;
  #observedAt = 0;
  #wake: (() => void) | undefined;
  #leader: string | undefined;
  /** Aborted when the current term ends; undefined while following. */
  #term: AbortController | undefined;
  /** Local time until which the current term may write: send time of the last successful renewal + renewDeadline. */
  #validUntil = 0;
  /** A follower does not create the Lease before this local time (set when a validly held Lease was deleted; 0: no gap). */
  #handoverAt = 0;
  #terms = 0;

  /**
   * The fence of leader-only writes (see the class comment): `admit` throws {@link NotLeaderError} unless this
   * replica leads with a renewal younger than `renewDeadline` (stepping down at once when it is older), and
   * returns the term's signal otherwise. Each fenced call is also bounded by `renewDeadline`.
   */
  readonly fence: WriteFence;

  constructor(options: LeaderElectionOptions) {
    if (options.renewDeadlineMs >= options.leaseDurationMs) {
      throw new RangeError(`renewDeadline (${options.renewDeadlineMs} ms) must be shorter than leaseDuration (${options.leaseDurationMs} ms)`);
    }
    this.#o = options;
    this.identity = options.identity;
    this.#path = apiPath('coordination.k8s.io/v1', 'leases', options.namespace, options.name);
    this.fence = {
      admit: () => {
        if (this.#leading && Date.now() >= this.#validUntil) this.#stepDown('the last Lease renewal is older than renewDeadline');
        if (!this.#leading || !this.#term) throw new NotLeaderError(`not sent: ${this.identity} does not hold the leader Lease`);
        return this.#term.signal;
      },
      timeoutMs: options.renewDeadlineMs,
    };
  }

  /** Whether this replica holds the Lease, and how many terms it has begun. */
  get leadership(): Published<Leadership> {
    return this.#leadership;
  }

  /** The holder this replica last observed (possibly itself), if any. */
  get leader(): string | undefined {
    return this.#leader;
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
        // Campaign: try now, then every retryPeriod (jittered, so replicas do not retry in step), or as soon as the watch says the
        // Lease changed.
        const sentAt = Date.now();
        if (!(await this.#tryAcquireOrRenew(this.#o.renewDeadlineMs))) {
          // Waiting out a hand-over gap: try again right when it ends, and look every retry period meanwhile, so a
          // Lease created and gone again during the gap is seen (it starts a gap of its own).
          const untilHandover = this.#handoverAt - Date.now();
          const period = retryPeriodMs * (1 + Math.random() * 0.2);
          await this.#pause(untilHandover > 0 ? Math.min(untilHandover + 5, period) : period, signal);
          continue;
        }
        if (signal.aborted) break;
        const term = this.#begin(sentAt);
        await this.#renewLoop(AbortSignal.any([signal, term.signal]));
        if (this.#term === term) this.#stepDown(signal.aborted ? 'stopping' : 'renewal failed');
        if (!signal.aborted) await sleep(2 * retryPeriodMs * (1 + Math.random() * 0.2), undefined, { signal }).catch(() => undefined);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      watcher.abort();
      if (this.#leading) this.#stepDown('stopping');
      if (this.#o.releaseOnCancel ?? true) await this.#release();
    }
  }

  /** Renews every retryPeriod; returns when the term ended, renewal failed until the term's validity ran out, or `signal` aborted. */
  async #renewLoop(signal: AbortSignal): Promise<void> {
    const { retryPeriodMs, logger } = this.#o;
    while (!signal.aborted) {
      await sleep(retryPeriodMs, undefined, { signal }).catch(() => undefined);
      let renewed = false;
      while (!signal.aborted && Date.now() < this.#validUntil) {
        const sentAt = Date.now();
        const outcome = await this.#renew(this.#validUntil - sentAt);
        if (signal.aborted) return;
        if (outcome === 'renewed') {
          this.#validUntil = sentAt + this.#o.renewDeadlineMs;
          renewed = true;
          break;
        }
        if (outcome === 'lost') return; // #renew stepped down already
        await sleep(Math.min(retryPeriodMs, Math.max(0, this.#validUntil - Date.now())), undefined, { signal }).catch(() => undefined);
      }
      if (signal.aborted) return;
      if (!renewed) {
        logger.warn({ identity: this.identity, holder: this.#observed?.holder }, 'failed to renew the leader Lease within renewDeadline; stepping down');
        this.#stepDown('renewal failed within renewDeadline');
        return;
      }
    }
  }

  /**
   * One renewal by the leader. `lost` (after stepping down) when the Lease is gone or names another holder;
   * `failed` when the attempt failed and may be retried within the term's validity.
   */
  async #renew(timeoutMs: number): Promise<'renewed' | 'failed' | 'lost'> {
    const now = Date.now();
    try {
      let lease = this.#lease;
      if (lease) {
        try {
          this.#remember(await withTimeout(this.#replace({ ...lease, spec: this.#desired(lease.spec, now) }, timeoutMs), timeoutMs), now);
          return 'renewed';
        } catch (err) {
          if (isNotFound(err)) return this.#lost('the leader Lease was deleted');
          if (!isConflict(err)) throw err;
        }
      }
      try {
        lease = await withTimeout(this.#o.client.get<Lease>(this.#path, { timeoutMs }), timeoutMs);
      } catch (err) {
        if (isNotFound(err)) return this.#lost('the leader Lease was deleted');
        throw err;
      }
      this.#observe(lease, now);
      const holder = lease.spec?.holderIdentity ?? '';
      if (holder !== this.identity) return this.#lost(`the leader Lease names ${holder ? `another holder (${holder})` : 'no holder'}`);
      this.#remember(await withTimeout(this.#replace({ ...lease, spec: this.#desired(lease.spec, now) }, timeoutMs), timeoutMs), now);
      return 'renewed';
    } catch (err) {
      if (!isConflict(err)) this.#o.logger.debug({ err: apiFailure(err) }, 'Lease renewal failed');
      return 'failed';
    }
  }

  #lost(reason: string): 'lost' {
    this.#forfeit(reason);
    return 'lost';
  }

  /** Steps down because the Lease is no longer this replica's: nothing is left to renew or release. */
  #forfeit(reason: string): void {
    this.#lease = undefined;
    this.#stepDown(reason);
  }

  /** One acquire attempt by a follower. Resolves false on any failure. */
  async #tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const now = Date.now();
    try {
      let lease: Lease;
      try {
        lease = await withTimeout(this.#o.client.get<Lease>(this.#path, { timeoutMs }), timeoutMs);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        // No watch event said who held the Lease when it went (the watch is down, or its event is still on the
        // way), and another replica may have created and held it since this one last looked: wait until any
        // holder's fence must have closed (renewDeadline after its last renewal; leaseDuration is longer) before
        // creating it. A replica that never saw a Lease creates it at once (a new installation).
        if (this.#handoverAt === 0 && this.#observed !== undefined) this.#handoverAt = now + this.#o.leaseDurationMs;
        if (now < this.#handoverAt) return false; // give the deleted Lease's holder time to see it is gone
        const created = await withTimeout(
          this.#o.client.post<Lease>(
            apiPath('coordination.k8s.io/v1', 'leases', this.#o.namespace),
            { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.#o.name, namespace: this.#o.namespace }, spec: this.#desired(undefined, now) },
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
      const updated = await withTimeout(this.#replace({ ...lease, spec: this.#desired(lease.spec, now) }, timeoutMs), timeoutMs);
      this.#remember(updated, now);
      return true;
    } catch (err) {
      if (!isConflict(err)) this.#o.logger.debug({ err: apiFailure(err) }, 'leader election attempt failed');
      return false;
    }
  }

  /** The spec this replica writes over `prev` (undefined: a new Lease). */
  #desired(prev: LeaseSpec | undefined, now: number): LeaseSpec {
    const mine = prev?.holderIdentity === this.identity;
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
      acquireTime: mine && prev?.acquireTime ? prev.acquireTime : microTime(now),
      renewTime: microTime(now),
      leaseTransitions: mine ? (prev?.leaseTransitions ?? 0) : (prev?.leaseTransitions ?? 0) + (prev ? 1 : 0),
    };
  }

  #replace(lease: Lease, timeoutMs = this.#o.renewDeadlineMs): Promise<Lease> {
    return this.#o.client.put<Lease>(this.#path, lease, { timeoutMs: Math.max(1, timeoutMs) });
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

  /** Records the Lease record and, when it changed, the local time of the change (what expiry is measured from). */
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
    if (
      !o ||
      o.holder !== record.holder ||
      o.renew !== record.renew ||
      o.acquire !== record.acquire ||
      o.transitions !== record.transitions ||
      o.durationS !== record.durationS
    ) {
      this.#observed = record;
      this.#observedAt = now;
      this.#handoverAt = 0; // a Lease exists again: any hand-over gap is over
      if (record.holder !== this.#leader) {
        this.#leader = record.holder || undefined;
        if (record.holder && record.holder !== this.identity) this.#o.logger.info({ leader: record.holder }, 'observed a new leader');
      }
    }
  }

  #isLeaseValid(now: number): boolean {
    return this.#observed !== undefined && this.#observedAt + this.#observed.durationS * 1000 > now;
  }

  /** Starts a term after a successful acquire sent at `sentAt`: opens the fence, then tells the listeners. */
  #begin(sentAt: number): AbortController {
    const term = new AbortController();
    this.#term = term;
    this.#terms++;
    this.#validUntil = sentAt + this.#o.renewDeadlineMs;
    this.#leading = true;
    this.#o.metrics?.leader.set(1);
    this.#o.metrics?.leaderTransitions.inc({ event: 'acquired' });
    this.#o.logger.info({ identity: this.identity }, 'became leader');
    this.#leadership.publish({ leading: true, term: this.#terms });
    return term;
  }

  /**
   * Ends the term at once, in this order: the fence closes (no leader-only write is sent from here on), the
   * term's signal aborts (writes in flight are cancelled, the renew loop ends), then metrics, log and listeners.
   * Synchronous, so nothing else runs in between.
   */
  #stepDown(reason: string): void {
    if (!this.#leading) return;
    this.#leading = false;
    const term = this.#term;
    this.#term = undefined;
    term?.abort(new NotLeaderError(`stepped down: ${reason}`));
    this.#o.metrics?.leader.set(0);
    this.#o.metrics?.leaderTransitions.inc({ event: 'lost' });
    this.#o.logger.info({ identity: this.identity, reason }, 'stopped leading');
    this.#leadership.publish({ leading: false, term: this.#terms });
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

  /** Handles one watch event of the Lease: the leader steps down on loss; a follower wakes the campaign. */
  #onLeaseEvent(type: string, lease: Lease | undefined): void {
    const holder = lease?.spec?.holderIdentity ?? '';
    if (this.#leading) {
      // Only news newer than this replica's own last write counts: the watch may still deliver older records.
      if (!newerVersion(lease?.metadata?.resourceVersion, this.#lease?.metadata?.resourceVersion)) return;
      if (type === 'DELETED') this.#forfeit('the leader Lease was deleted');
      else if ((type === 'ADDED' || type === 'MODIFIED') && holder !== this.identity) {
        this.#forfeit(`the leader Lease names ${holder ? `another holder (${holder})` : 'no holder'}`);
      }
      return;
    }
    // A record the watch shows is as good as one read: a follower whose own attempt lost the race to create the
    // Lease (a conflict, nothing read) knows the holder only from here, and must count its term as valid.
    if ((type === 'ADDED' || type === 'MODIFIED') && lease) this.#observe(lease, Date.now());
    if (type === 'DELETED' && holder !== '' && holder !== this.identity && this.#isLeaseValid(Date.now())) {
      // The old holder learns of the deletion from its watch at once, or from its next renewal within a retry period.
      this.#handoverAt = Date.now() + Math.round(1.5 * this.#o.retryPeriodMs);
    } else if (type === 'DELETED' || holder === '') this.#wake?.();
  }

  /**
   * Watches the Lease for the whole run: the leader learns at once that its Lease was deleted or taken, and a
   * campaigning follower takes over a released or deleted Lease without waiting for the retry period.
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
            this.#onLeaseEvent(type, obj as Lease | undefined);
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
        // Short: while the watch is down a leader learns of a lost Lease only from its next renewal.
        await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 6)), undefined, { signal }).catch(() => undefined);
      }
    }
  }
}

/**
 * True when resourceVersion `a` is newer than `b`. Kubernetes resourceVersions of one resource are comparable
 * integers; anything else (or a missing `b`) counts as newer, the safe side for a leader checking for loss.
 */
function newerVersion(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return true;
  return BigInt(a) > BigInt(b);
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
function microTime(ms: number): string {
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
