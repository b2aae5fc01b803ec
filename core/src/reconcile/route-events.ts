import type { Logger } from 'pino';
import type { EventSink, Runnable } from '../plugin-api/lifecycle.js';
import type { RouteStore } from '../routes/store.js';
import type { IngressRef, RouteTable } from '../routes/types.js';

export interface RouteEventsOptions {
  readonly store: RouteStore;
  readonly events: EventSink;
  readonly logger: Logger;
}

/**
 * Turns route tables into Kubernetes Events (leader only):
 *  - every `Diagnostic` of the current table becomes a Warning (or Normal) Event on the object it names; the
 *    {@link EventRecorder} deduplicates, so re-reporting the same diagnostics on every rebuild costs nothing;
 *  - `Synced` (Normal) once per Ingress generation that reaches the data plane while this replica leads (not for a
 *    generation rejected while its last good version is still served). On
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
    const synced = new Map<string, SyncedGeneration>();
    let previous: RouteTable | undefined;
    for await (const table of this.#o.store.changes(signal)) {
      if (table.generation === 0) continue; // nothing built yet
      this.#report(table, previous, synced);
      previous = table;
    }
  }

  #report(table: RouteTable, previous: RouteTable | undefined, synced: Map<string, SyncedGeneration>): void {
    const { events } = this.#o;
    const seedOnly = previous === undefined;
    for (const d of table.diagnostics) {
      const message = d.field && !d.message.includes(d.field) ? `${d.message} (field ${d.field})` : d.message;
      if (d.type === 'Warning') events.warning(d.object, d.reason, message);
      else events.normal(d.object, d.reason, message);
    }
    // Only Ingresses whose entry changed can have news; an incrementally built table names them.
    const changes = previous ? table.ownedChangesSince?.(previous) : undefined;
    const changed: IngressRef[] = [];
    const consider = (key: string, ing: IngressRef): void => {
      const last = synced.get(key);
      if (last?.uid === ing.uid && last.generation === ing.generation) return;
      synced.set(key, { uid: ing.uid, generation: ing.generation });
      if (!seedOnly) changed.push(ing);
    };
    if (changes) {
      for (const [key, ing] of changes) {
        if (ing) consider(key, ing);
        else synced.delete(key);
      }
    } else {
      const live = new Set<string>();
      for (const ing of table.ownedIngresses) {
        const key = `${ing.namespace}/${ing.name}`;
        live.add(key);
        consider(key, ing);
      }
      for (const key of synced.keys()) if (!live.has(key)) synced.delete(key);
    }
    if (changed.length > 0) {
      // Counting is linear in the table; only pay for it when some Ingress has news.
      const routes = new Map<string, number>();
      // Generation the routes of each Ingress come from: an older one than the Ingress's own means its new version
      // was rejected and the last good version is still served (the Warning says so); that is not "Synced".
      const routedGeneration = new Map<string, number>();
      for (const r of table.routes) {
        routes.set(r.ingress.uid, (routes.get(r.ingress.uid) ?? 0) + 1);
        routedGeneration.set(r.ingress.uid, r.ingress.generation);
      }
      const warnings = new Map<string, number>();
      for (const d of table.diagnostics) if (d.type === 'Warning' && d.object.uid) warnings.set(d.object.uid, (warnings.get(d.object.uid) ?? 0) + 1);
      for (const ing of changed) {
        const served = routedGeneration.get(ing.uid);
        if (served !== undefined && served !== ing.generation) continue;
        const n = routes.get(ing.uid) ?? 0;
        const w = warnings.get(ing.uid) ?? 0;
        events.normal(
          { kind: 'Ingress', namespace: ing.namespace, name: ing.name, uid: ing.uid },
          'Synced',
          `Ingress generation ${ing.generation} is routed: ${n} route${n === 1 ? '' : 's'}${w ? `, ${w} warning${w === 1 ? '' : 's'} (see other events)` : ''}`,
        );
      }
    }
  }
}

/** The Ingress generation last announced (or seen at leadership start) under one `namespace/name`. */
interface SyncedGeneration {
  readonly uid: string;
  readonly generation: number;
}
