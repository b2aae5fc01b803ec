import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ErrorCode, WarrenError } from '../errors.js';
import type { WatchedKind } from '../k8s/kinds.js';
import type { StoreChange } from '../k8s/object-store.js';
import type { Runnable, SecretReader } from '../plugin-api/lifecycle.js';
import { snapshotKey, type ClusterSnapshot, type CoreSnapshotField, type MutableClusterSnapshot, type SnapshotChanges } from '../routes/snapshot.js';
import { parseManifestText, type ManifestObject, type ManifestProblem } from './manifest-parser.js';
import { CLUSTER_SCOPED_KINDS, LOCAL_KINDS, type LocalKind } from './manifest-schema.js';

/** File names the folder source reads; everything else (and dot-files, editor backups) is ignored. */
const MANIFEST_FILE = /^[^.].*\.(ya?ml|json)$/i;

export interface FolderSourceOptions {
  /** Folder of manifests (setting `source.folder`). Read non-recursively, like `kubectl apply -f DIR`. */
  readonly folder: string;
  /** Quiet time after the last file event before the folder is read again. Default 100 ms. */
  readonly debounceMs?: number | undefined;
  /** Problems are logged here (errors and warnings at `warn`, ignored kinds at `debug`). */
  readonly logger?: Logger | undefined;
}

/** The outcome of reading the folder once. */
export interface FolderLoadResult {
  readonly snapshot: ClusterSnapshot;
  /** Every problem of the files as they are now, in file then document order. */
  readonly problems: readonly ManifestProblem[];
  /** Manifest files read, relative to the folder, sorted. */
  readonly files: readonly string[];
  /** True when the snapshot differs from the one before this load. */
  readonly changed: boolean;
}

/** Called after a read that changed the snapshot, with the whole result. */
export type FolderLoadListener = (result: FolderLoadResult) => void;

/** Called after a read that changed the snapshot, once per kind that changed (as `ClusterInformers` reports). */
export type FolderChangeListener = (kind: WatchedKind, changes: ReadonlyMap<string, StoreChange>) => void;

/** The folder's Secrets for plugins, plus the reference hook route sync calls (a no-op: every Secret is in memory). */
export interface FolderSecrets extends SecretReader {
  setReferences(refs: Iterable<string>): Promise<void>;
}

interface FileState {
  readonly hash: string;
  /** The objects of the last version of the file that had no errors (kept while the file has errors). */
  readonly objects: readonly ManifestObject[];
  readonly problems: readonly ManifestProblem[];
}

const KIND_OF: Record<CoreSnapshotField, WatchedKind> = {
  ingresses: 'Ingress',
  ingressClasses: 'IngressClass',
  services: 'Service',
  endpointSlices: 'EndpointSlice',
  secrets: 'Secret',
};

const CORE_FIELD: Partial<Record<LocalKind, CoreSnapshotField>> = {
  Ingress: 'ingresses',
  IngressClass: 'ingressClasses',
  Service: 'services',
  EndpointSlice: 'endpointSlices',
  Secret: 'secrets',
};

/** The kinds that go into `ClusterSnapshot.extra` (the Gateway API's, and the Namespaces and ConfigMaps it reads). */
const EXTRA_KINDS = (Object.keys(LOCAL_KINDS) as LocalKind[]).filter((kind) => CORE_FIELD[kind] === undefined);

/** Keys per snapshot field that changed since the last `takeChanges`. */
interface PendingChanges extends Record<CoreSnapshotField, Set<string>> {
  readonly extra: Map<string, Set<string>>;
}

/**
 * Local mode's replacement for the informers: reads Ingress, IngressClass, Service, EndpointSlice and Secret
 * manifests from a folder (multi-document `.yaml`/`.yml`/`.json`, `v1 List`s too) into a `ClusterSnapshot`, and
 * the Gateway API kinds with the Namespaces and ConfigMaps they read into its `extra` maps (as the informers do),
 * and watches the folder so that editing a manifest changes routing live.
 *
 * Behaviour, chosen to match `kubectl apply -f DIR` against a real API server:
 *  - a namespaced object without `metadata.namespace` lands in `default`;
 *  - a file with an error (bad YAML, wrong field type, bad name) is not applied: its last good version stays
 *    in effect, and the problem names the file, the document, the object and the field; other files load;
 *  - a Gateway API object that breaks its CRD's schema is left out on its own (the API server refuses it and
 *    applies the rest), so its routes are not served; the rest of its file applies;
 *  - an object defined twice (same kind, namespace and name) is taken from the first file in name order;
 *  - Secret `stringData` is folded into `data`; `uid`, `creationTimestamp`, `generation` and
 *    `resourceVersion` are filled in when missing (stable across reloads while the object exists).
 *
 * Unchanged objects keep their identity across reloads, and a changed object is always a new object, as the
 * route builder's snapshot contract asks. It offers what route sync reads from `ClusterInformers` (the
 * `SnapshotSource` of `reconcile/route-sync.ts`: `snapshot`, `takeChanges`, `onChange`, `secrets`), and like
 * them it is a Runnable of the caches group: `start` reads once (rejecting with a WarrenError when the folder
 * cannot be read) and then watches until stopped; `waitForSync` resolves after the first read.
 */
export class FolderSource implements Runnable {
  readonly needsLeader = false;
  /** Secrets of the folder, decoded, for plugins (`ProvisionContext.secrets`). */
  readonly secrets: FolderSecrets;
  readonly #folder: string;
  readonly #debounceMs: number;
  readonly #logger: Logger | undefined;
  readonly #files = new Map<string, FileState>();
  readonly #listeners = new Set<FolderChangeListener>();
  readonly #loadListeners = new Set<FolderLoadListener>();
  readonly #secretListeners = new Set<(namespace: string, name: string) => void>();
  readonly #identity = new Map<string, { uid: string; created: Date; generation: number; spec: string }>();
  #snapshot: FolderSnapshot = emptyMutableSnapshot();
  /** `Kind key` → the file the object in the snapshot was read from. */
  #origin: ReadonlyMap<string, string> = new Map();
  #problems: readonly ManifestProblem[] = [];
  #pending: PendingChanges = emptyChanges();
  #version = 0;
  #synced = false;
  #syncWaiters: Array<() => void> = [];
  readonly #filled = new WeakSet<object>();
  /** The object as parsed (before metadata was filled in), as JSON, for change detection. */
  readonly #canonical = new WeakMap<object, string>();
  #loading: Promise<FolderLoadResult> | undefined;
  #queued: Promise<FolderLoadResult> | undefined;

  constructor(options: FolderSourceOptions) {
    this.#folder = options.folder;
    this.#debounceMs = options.debounceMs ?? 100;
    this.#logger = options.logger;
    this.secrets = {
      get: (namespace, name) => decodeSecret(this.#snapshot.secrets.get(snapshotKey(namespace, name))),
      onChange: (listener) => {
        this.#secretListeners.add(listener);
        return () => this.#secretListeners.delete(listener);
      },
      setReferences: () => Promise.resolve(),
    };
  }

  get folder(): string {
    return this.#folder;
  }

  /** True once the folder was read for the first time. */
  get synced(): boolean {
    return this.#synced;
  }

  /** Resolves after the first read of the folder (or when `signal` aborts). */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.#synced || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => resolve();
      this.#syncWaiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** The objects as of the last read. Never mutated afterwards; the next read builds new maps. */
  snapshot(): ClusterSnapshot {
    return this.#snapshot;
  }

  /** The manifest file (as shown in messages) an object of the last read came from; undefined when unknown. */
  fileOf(kind: string, namespace: string | undefined, name: string): string | undefined {
    return this.#origin.get(`${kind} ${CLUSTER_SCOPED_KINDS.has(kind as LocalKind) || namespace === undefined ? name : snapshotKey(namespace, name)}`);
  }

  /** Problems of the files as of the last read. */
  problems(): readonly ManifestProblem[] {
    return this.#problems;
  }

  /** Keys that changed since the previous call (complete, so a route builder may rely on it). */
  takeChanges(): SnapshotChanges {
    const changes = this.#pending;
    this.#pending = emptyChanges();
    return changes;
  }

  /** Subscribes to changes per kind (the informers' signature); returns an unsubscribe function. */
  onChange(listener: FolderChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Subscribes to whole read results that changed the snapshot; returns an unsubscribe function. */
  onLoad(listener: FolderLoadListener): () => void {
    this.#loadListeners.add(listener);
    return () => this.#loadListeners.delete(listener);
  }

  /**
   * Reads the folder now and publishes the result, which reflects the files as they were when the call was
   * made or later. Reads never overlap: a call during a read queues one more read, shared by every call made
   * meanwhile. Rejects with a WarrenError only when the folder itself cannot be listed.
   */
  load(): Promise<FolderLoadResult> {
    if (this.#queued) return this.#queued;
    if (this.#loading) {
      this.#queued = this.#loading
        .catch(() => undefined)
        .then(() => {
          this.#queued = undefined;
          return this.#startRead();
        });
      return this.#queued;
    }
    return this.#startRead();
  }

  #startRead(): Promise<FolderLoadResult> {
    this.#loading = this.#read().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async start(signal: AbortSignal): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    let retry: NodeJS.Timeout | undefined;
    let watcher: FSWatcher | undefined;
    const schedule = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        void this.load().catch((err: unknown) => this.#logger?.error({ err, folder: this.#folder }, 'reading the manifest folder failed'));
      }, this.#debounceMs);
    };
    // The watcher opens before the first read, so that no change made after start() is called can be missed.
    const open = (reopened: boolean) => {
      try {
        watcher = watch(this.#folder, { persistent: true }, schedule);
        watcher.on('error', (err) => {
          this.#logger?.warn({ err, folder: this.#folder }, 'watching the manifest folder failed; retrying');
          watcher?.close();
          watcher = undefined;
          if (!signal.aborted) retry = setTimeout(open, 1000, true);
        });
        if (reopened) schedule(); // pick up changes made while no watcher was open
      } catch (err) {
        if (!reopened) return; // the first read reports an unreadable folder
        this.#logger?.warn({ err, folder: this.#folder }, 'cannot watch the manifest folder; retrying');
        if (!signal.aborted) retry = setTimeout(open, 1000, true);
      }
    };
    const stop = () => {
      clearTimeout(timer);
      clearTimeout(retry);
      watcher?.close();
    };
    open(false);
    try {
      await this.load();
    } catch (err) {
      stop();
      throw err;
    }
    if (!watcher && !signal.aborted) retry = setTimeout(open, 1000, true);
    if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    stop();
    await this.#loading?.catch(() => undefined);
    await this.#queued?.catch(() => undefined);
  }

  async #read(): Promise<FolderLoadResult> {
    let names: string[];
    try {
      const entries = await readdir(this.#folder, { withFileTypes: true });
      names = entries
        .filter((e) => (e.isFile() || e.isSymbolicLink()) && MANIFEST_FILE.test(e.name))
        .map((e) => e.name)
        .sort();
    } catch (err) {
      throw new WarrenError(ErrorCode.ConfigInvalid, `setting "source.folder": cannot read folder ${this.#folder}: ${(err as Error).message}`, {
        terminal: true,
        cause: err,
      });
    }
    const present = new Set(names);
    for (const name of [...this.#files.keys()]) if (!present.has(name)) this.#files.delete(name);
    for (const name of names) {
      const path = join(this.#folder, name);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        // Deleted or replaced between listing and reading: the watcher reports it and the next read settles it.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          this.#files.delete(name);
          continue;
        }
        const previous = this.#files.get(name);
        const shown = displayPath(this.#folder, name);
        const problem: ManifestProblem = { file: shown, severity: 'error', message: `${shown}: cannot read: ${(err as Error).message}` };
        this.#files.set(name, { hash: '', objects: previous?.objects ?? [], problems: [problem] });
        continue;
      }
      const hash = createHash('sha256').update(text).digest('hex');
      const previous = this.#files.get(name);
      if (previous?.hash === hash) continue;
      const parsed = parseManifestText(text, displayPath(this.#folder, name));
      const failed = parsed.problems.some((p) => p.severity === 'error');
      const kept = failed ? (previous?.objects ?? []) : this.#reuseUnchanged(parsed.objects, previous?.objects ?? []);
      const problems =
        failed && previous?.objects.length
          ? [
              ...parsed.problems,
              {
                file: displayPath(this.#folder, name),
                severity: 'error' as const,
                message: `${displayPath(this.#folder, name)}: not applied; its last good version stays in effect until the errors are fixed`,
              },
            ]
          : parsed.problems;
      this.#files.set(name, { hash, objects: kept, problems });
    }
    return this.#publish(names);
  }

  /**
   * Objects of an edited file that did not change keep their previous instance, so only what really changed
   * looks changed to the route builder.
   */
  #reuseUnchanged(objects: readonly ManifestObject[], previous: readonly ManifestObject[]): ManifestObject[] {
    const before = new Map(previous.map((o) => [`${o.kind} ${o.namespace ?? ''}/${o.name}`, o]));
    return objects.map((o) => {
      const text = JSON.stringify(o.object);
      this.#canonical.set(o.object, text);
      const old = before.get(`${o.kind} ${o.namespace ?? ''}/${o.name}`);
      return old && this.#canonical.get(old.object) === text ? { ...o, object: old.object } : o;
    });
  }

  #publish(names: readonly string[]): FolderLoadResult {
    const next = emptyMutableSnapshot();
    const problems: ManifestProblem[] = [];
    const origin = new Map<string, string>();
    for (const name of names) {
      const state = this.#files.get(name);
      if (!state) continue;
      problems.push(...state.problems);
      for (const entry of state.objects) {
        const key = CLUSTER_SCOPED_KINDS.has(entry.kind) ? entry.name : snapshotKey(entry.namespace!, entry.name);
        const id = `${entry.kind} ${key}`;
        const first = origin.get(id);
        if (first !== undefined) {
          problems.push({
            file: entry.file,
            document: entry.document,
            object: id,
            severity: 'error',
            message: `${entry.file}, document ${entry.document}: ${id} is also defined in ${first}; the copy in ${first} is used`,
          });
          continue;
        }
        origin.set(id, entry.file);
        mapOf(next, entry.kind).set(key, this.#withIdentity(id, entry));
      }
    }
    const previous = this.#snapshot;
    const changes = new Map<WatchedKind, Map<string, StoreChange>>();
    const compare = (kind: WatchedKind, before: ReadonlyMap<string, unknown>, after: ReadonlyMap<string, unknown>, pending: Set<string>) => {
      const kindChanges = new Map<string, StoreChange>();
      for (const key of new Set([...before.keys(), ...after.keys()])) {
        const [old, now] = [before.get(key), after.get(key)];
        if (old === now) continue;
        kindChanges.set(key, old === undefined ? 'added' : now === undefined ? 'deleted' : 'updated');
        pending.add(key);
      }
      if (kindChanges.size > 0) changes.set(kind, kindChanges);
    };
    for (const map of Object.keys(KIND_OF) as Array<CoreSnapshotField>) {
      compare(KIND_OF[map], previous[map] as ReadonlyMap<string, unknown>, next[map] as ReadonlyMap<string, unknown>, this.#pending[map]);
    }
    for (const kind of EXTRA_KINDS) {
      compare(kind, previous.extra?.get(kind) ?? NONE, next.extra.get(kind)!, this.#pending.extra.get(kind)!);
    }
    const changed = changes.size > 0;
    for (const [id] of this.#identity) if (!origin.has(id)) this.#identity.delete(id);
    this.#snapshot = next;
    this.#origin = origin;
    this.#report(problems, this.#problems);
    this.#problems = problems;
    const result: FolderLoadResult = { snapshot: next, problems, files: names, changed };
    if (!this.#synced) {
      this.#synced = true;
      for (const waiter of this.#syncWaiters.splice(0)) waiter();
    }
    if (changed) {
      for (const [kind, kindChanges] of changes) {
        for (const listener of this.#listeners) {
          try {
            listener(kind, kindChanges);
          } catch (err) {
            this.#logger?.error({ err, kind }, 'a folder change listener threw');
          }
        }
      }
      for (const listener of this.#loadListeners) {
        try {
          listener(result);
        } catch (err) {
          this.#logger?.error({ err }, 'a folder load listener threw');
        }
      }
      for (const key of changes.get('Secret')?.keys() ?? []) {
        const [namespace, name] = key.split('/') as [string, string];
        for (const listener of this.#secretListeners) {
          try {
            listener(namespace, name);
          } catch (err) {
            this.#logger?.error({ err }, 'a Secret change listener threw');
          }
        }
      }
    }
    return result;
  }

  /**
   * Returns the object with the metadata the API server would have added. Objects of unchanged files are
   * returned as they are (already filled in on an earlier read), so their identity is stable.
   */
  #withIdentity(id: string, entry: ManifestObject): Record<string, unknown> {
    const object = entry.object;
    if (this.#filled.has(object)) return object;
    this.#filled.add(object);
    const metadata = object.metadata as Record<string, unknown>;
    const spec = JSON.stringify({ ...object, metadata: undefined, status: undefined });
    let known = this.#identity.get(id);
    if (!known) {
      known = { uid: stableUid(id), created: new Date(), generation: 1, spec };
      this.#identity.set(id, known);
    } else if (known.spec !== spec) {
      known.generation++;
      known.spec = spec;
    }
    metadata.uid ??= known.uid;
    metadata.creationTimestamp ??= known.created.toISOString();
    metadata.generation ??= known.generation;
    metadata.resourceVersion ??= String(++this.#version);
    return object;
  }

  /** Logs problems that were not there on the previous read (a problem stays until its file changes). */
  #report(problems: readonly ManifestProblem[], previous: readonly ManifestProblem[]): void {
    if (!this.#logger) return;
    const known = new Set(previous.map((p) => p.message));
    for (const p of problems) {
      if (known.has(p.message)) continue;
      if (p.severity === 'ignored') this.#logger.debug({ file: p.file, document: p.document }, p.message);
      else this.#logger.warn({ file: p.file, document: p.document, object: p.object }, p.message);
    }
  }
}

/**
 * Reads a manifest folder once, without watching: the snapshot and every problem. Rejects with a WarrenError
 * when the folder cannot be listed.
 */
export async function loadManifestFolder(folder: string): Promise<FolderLoadResult> {
  return new FolderSource({ folder }).load();
}

/** Shown path of a file for messages: relative to the current directory when that is shorter. */
function displayPath(folder: string, file: string): string {
  const full = join(folder, file);
  const rel = relative(process.cwd(), full);
  return rel.length < full.length && !rel.startsWith('..') ? rel : full;
}

/** A snapshot being filled, whose `extra` holds a (possibly empty) map for every kind of {@link EXTRA_KINDS}. */
interface FolderSnapshot extends MutableClusterSnapshot {
  readonly extra: Map<string, Map<string, KubernetesObject>>;
}

const NONE: ReadonlyMap<string, unknown> = new Map();

function emptyMutableSnapshot(): FolderSnapshot {
  return {
    ingresses: new Map(),
    ingressClasses: new Map(),
    services: new Map(),
    endpointSlices: new Map(),
    secrets: new Map(),
    extra: new Map(EXTRA_KINDS.map((kind) => [kind, new Map()])),
  };
}

/** The map of `snapshot` that holds objects of `kind`. */
function mapOf(snapshot: FolderSnapshot, kind: LocalKind): Map<string, unknown> {
  const field = CORE_FIELD[kind];
  return (field ? snapshot[field] : snapshot.extra.get(kind)!) as Map<string, unknown>;
}

function emptyChanges(): PendingChanges {
  return {
    ingresses: new Set(),
    ingressClasses: new Set(),
    services: new Set(),
    endpointSlices: new Set(),
    secrets: new Set(),
    extra: new Map(EXTRA_KINDS.map((kind) => [kind, new Set()])),
  };
}

/** A UUID-shaped id derived from the object's identity, so it is the same in every run. */
function stableUid(id: string): string {
  const h = createHash('sha256').update(`warren-local:${id}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function decodeSecret(secret: unknown): Readonly<Record<string, Buffer>> | undefined {
  if (!secret) return undefined;
  const data = (secret as { data?: Record<string, string> }).data ?? {};
  const out: Record<string, Buffer> = {};
  for (const [key, value] of Object.entries(data)) out[key] = Buffer.from(value, 'base64');
  return Object.freeze(out);
}
