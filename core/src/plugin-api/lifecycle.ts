import type { Logger } from 'pino';

/**
 * Lifecycle of a plugin instance, in this order:
 *   1. construction by the container: no side effects (no sockets, timers, API calls);
 *   2. `provision(ctx)`: acquire resources; should be fast;
 *   3. `validate()`: cross-field checks after provisioning; throw a WarrenError to refuse;
 *   4. use (route binding, exchanges, route-table reactions);
 *   5. `dispose()`: release everything. Idempotent, and must work after a failed or partial `provision`.
 * Plugins implement only the hooks they need.
 */
export interface PluginLifecycle {
  provision?(ctx: ProvisionContext): void | Promise<void>;
  validate?(): void | Promise<void>;
  dispose?(): void | Promise<void>;
}

/** Handed to `provision`. Everything a plugin may use from core, nothing more. */
export interface ProvisionContext {
  /** Child logger with `plugin: <id>`. Never log secret material. */
  readonly logger: Logger;
  /** Aborted when the plugin instance is being disposed or the controller stops. */
  readonly signal: AbortSignal;
  /** Secrets referenced by routes (see `AnnotationSpec.secretRef`). */
  readonly secrets: SecretReader;
  /** Records Kubernetes Events (deduplicated; emitted by the leader only). */
  readonly events: EventSink;
}

/** Read access to the Secrets that routes reference. Data values are raw bytes. */
export interface SecretReader {
  get(namespace: string, name: string): Readonly<Record<string, Buffer>> | undefined;
  /**
   * True while `get` misses only because the Secret is still being fetched (a route started referencing it a
   * moment ago): not an error to report yet; `onChange` fires once the fetch settles. Readers that always know
   * (local files, tests) leave it out.
   */
  loading?(namespace: string, name: string): boolean;
  /** Calls `listener` after a referenced Secret changes (rotation); returns an unsubscribe function. */
  onChange(listener: (namespace: string, name: string) => void): () => void;
}

export interface EventSink {
  warning(object: EventObject, reason: string, message: string): void;
  normal(object: EventObject, reason: string, message: string): void;
}

export interface EventObject {
  readonly kind: string;
  readonly namespace?: string | undefined;
  readonly name: string;
  readonly uid?: string | undefined;
}

/**
 * Anything long-running. `start` resolves only when `signal` aborts and the work has stopped, so the manager
 * knows when a stop is complete; rejecting means the component failed.
 */
export interface Runnable {
  /** Leader-only work (status, DNS, firewall) runs only while this replica leads. */
  readonly needsLeader: boolean;
  start(signal: AbortSignal): Promise<void>;
}
