import { constant, type Published } from './published.js';

/**
 * Whether this replica leads, published by leader election (`LeaderElector.leadership`) and read by everything
 * that depends on it: the manager starts and stops the leader-only runnables, Events are recorded by the leader
 * only, the managed tunnel is created or replaced by the leader only, and control plugins see the term.
 */
export interface Leadership {
  readonly leading: boolean;
  /** Terms this replica has begun: 1 during its first, 0 before it ever led. Unchanged when a term ends. */
  readonly term: number;
}

/** Leadership of a replica without leader election (`kubernetes.leaderElection.enabled: false`, folder mode). */
export const ALWAYS_LEADING: Published<Leadership> = constant({ leading: true, term: 1 });

export const sameLeadership = (a: Leadership, b: Leadership): boolean => a.leading === b.leading && a.term === b.term;
