import type { Logger } from 'pino';
import { isIngressOwned } from '../model/route-owner.js';
import type { EventSink, Runnable } from '../plugin-api/lifecycle.js';
import type { RouteStore } from '../routes/store.js';
import { emptyRouteTable, routeChangesBetween } from '../routes/table.js';
import type { IngressRef, RouteChanges, RouteTable } from '../routes/types.js';

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
 *    generation rejected while its last good version is still served); only ever on Ingresses: HTTPRoutes and
 *    GRPCRoutes report through their own status, and none may be taken for the Ingress of its name. On
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
    const routed = new RoutedIngresses();
    let previous: RouteTable | undefined;
    for await (const table of this.#o.store.changes(signal)) {
      if (table.generation === 0) continue; // nothing built yet
      routed.update(routeChangesBetween(previous ?? EMPTY_TABLE, table));
      this.#report(table, previous, synced, routed);
      previous = table;
    }
  }

  #report(table: RouteTable, previous: RouteTable | undefined, synced: Map<string, SyncedGeneration>, routed: RoutedIngresses): void {
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
      if (!isIngressOwned(ing)) return;
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
      const warnings = new Map<string, number>();
      for (const d of table.diagnostics) if (d.type === 'Warning' && d.object.uid) warnings.set(d.object.uid, (warnings.get(d.object.uid) ?? 0) + 1);
      for (const ing of changed) {
        // Routes from an older generation than the Ingress's own mean its new version was rejected and the last
        // good version is still served (the Warning says so); that is not "Synced".
        const served = routed.get(ing.uid);
        if (served !== undefined && served.generation !== ing.generation) continue;
        const n = served?.routes ?? 0;
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

const EMPTY_TABLE = emptyRouteTable();

/**
 * Per Ingress uid, how many routes the table has from it and from which Ingress generation; kept from the
 * tables' route changes, so an Event costs what changed rather than a count over the table. Routes of other
 * kinds (HTTPRoute, GRPCRoute) are not counted: no Ingress Event is about them.
 */
export class RoutedIngresses {
  readonly #byUid = new Map<string, { routes: number; generation: number }>();

  update(changes: RouteChanges): void {
    for (const r of changes.removed) {
      if (!isIngressOwned(r.ingress)) continue;
      const entry = this.#byUid.get(r.ingress.uid);
      if (entry !== undefined && --entry.routes === 0) this.#byUid.delete(r.ingress.uid);
    }
    for (const r of changes.added) {
      if (!isIngressOwned(r.ingress)) continue;
      const entry = this.#byUid.get(r.ingress.uid);
      if (entry === undefined) this.#byUid.set(r.ingress.uid, { routes: 1, generation: r.ingress.generation });
      else {
        entry.routes++;
        entry.generation = r.ingress.generation;
      }
    }
  }

  get(uid: string): { readonly routes: number; readonly generation: number } | undefined {
    return this.#byUid.get(uid);
  }
}
