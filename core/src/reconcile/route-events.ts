import type { Logger } from 'pino';
import type { EventSink, Runnable } from '../plugin-api/lifecycle.js';
import type { RouteStore } from '../routes/store.js';
import type { RouteTable } from '../routes/types.js';

export interface RouteEventsOptions {
  readonly store: RouteStore;
  readonly events: EventSink;
  readonly logger: Logger;
}

/**
 * Turns route tables into Kubernetes Events (leader only):
 *  - every `Diagnostic` of the current table becomes a Warning (or Normal) Event on the object it names; the
 *    {@link EventRecorder} deduplicates, so re-reporting the same diagnostics on every rebuild costs nothing;
 *  - `Synced` (Normal) once per Ingress generation that reaches the data plane while this replica leads. On
 *    gaining leadership the current generations are recorded silently: a restart or failover changed nothing a
 *    user did, so it does not announce 10,000 Ingresses again.
 */
export class RouteEventsReporter implements Runnable {
  readonly needsLeader = true;
  readonly #o: RouteEventsOptions;

  constructor(options: RouteEventsOptions) {
    this.#o = options;
  }

  async start(signal: AbortSignal): Promise<void> {
    const synced = new Map<string, number>();
    let first = true;
    for await (const table of this.#o.store.changes(signal)) {
      if (table.generation === 0) continue; // nothing built yet
      this.#report(table, synced, first);
      first = false;
    }
  }

  #report(table: RouteTable, synced: Map<string, number>, seedOnly: boolean): void {
    const { events } = this.#o;
    for (const d of table.diagnostics) {
      const message = d.field && !d.message.includes(d.field) ? `${d.message} (field ${d.field})` : d.message;
      if (d.type === 'Warning') events.warning(d.object, d.reason, message);
      else events.normal(d.object, d.reason, message);
    }
    const live = new Set<string>();
    const changed = [];
    for (const ing of table.ownedIngresses) {
      live.add(ing.uid);
      if (synced.get(ing.uid) === ing.generation) continue;
      synced.set(ing.uid, ing.generation);
      if (!seedOnly) changed.push(ing);
    }
    if (changed.length > 0) {
      // Counting is linear in the table; only pay for it when some Ingress has news.
      const routes = new Map<string, number>();
      for (const r of table.routes) routes.set(r.ingress.uid, (routes.get(r.ingress.uid) ?? 0) + 1);
      const warnings = new Map<string, number>();
      for (const d of table.diagnostics) if (d.type === 'Warning' && d.object.uid) warnings.set(d.object.uid, (warnings.get(d.object.uid) ?? 0) + 1);
      for (const ing of changed) {
        const n = routes.get(ing.uid) ?? 0;
        const w = warnings.get(ing.uid) ?? 0;
        events.normal(
          { kind: 'Ingress', namespace: ing.namespace, name: ing.name, uid: ing.uid },
          'Synced',
          `Ingress generation ${ing.generation} is routed: ${n} route${n === 1 ? '' : 's'}${w ? `, ${w} warning${w === 1 ? '' : 's'} (see other events)` : ''}`,
        );
      }
    }
    for (const uid of synced.keys()) if (!live.has(uid)) synced.delete(uid);
  }
}
