import { LineCounter, parseAllDocuments } from 'yaml';
import { CLUSTER_SCOPED_KINDS, fieldPath, LOCAL_KINDS, localKindSchema, OBJECT_SCOPED_KINDS, type LocalKind } from './manifest-schema.js';
import { PARSED_ONCE } from '../config/parse-once.js';

/** A problem found in a manifest file. Messages name the file, the document and, where known, the object and field. */
export interface ManifestProblem {
  readonly file: string;
  /** 1-based document number within the file (YAML `---` sections); undefined for file-level problems. */
  readonly document?: number | undefined;
  /** `Kind namespace/name` when the object could be identified. */
  readonly object?: string | undefined;
  /**
   * `error`: the file is not applied (its last good version stays in effect);
   * `warning`: applied, but probably not what was meant;
   * `rejected`: the object is left out (a Gateway API object breaking its CRD's schema); the rest of the file applies;
   * `ignored`: a document of a kind local mode does not read.
   */
  readonly severity: 'error' | 'rejected' | 'warning' | 'ignored';
  /** Full human-readable message, including file and document. */
  readonly message: string;
}

/** One accepted object and where it came from. */
export interface ManifestObject {
  readonly kind: LocalKind;
  /** Namespace as written, or `default` (namespaced kinds) / undefined (cluster-scoped kinds). */
  readonly namespace: string | undefined;
  readonly name: string;
  /** The object as parsed: plain data, Secret `stringData` folded into `data`. */
  readonly object: Record<string, unknown>;
  readonly file: string;
  readonly document: number;
}

export interface ParsedManifestFile {
  readonly objects: readonly ManifestObject[];
  readonly problems: readonly ManifestProblem[];
}

/** Label that ties an EndpointSlice to its Service. */
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * Parses the text of one manifest file: multi-document YAML (JSON is YAML too), each document a Kubernetes
 * object or a `v1 List` of them. Pure: never throws for any input, every problem is returned.
 */
export function parseManifestText(text: string, file: string): ParsedManifestFile {
  const objects: ManifestObject[] = [];
  const problems: ManifestProblem[] = [];
  const lines = new LineCounter();
  let documents: ReturnType<typeof parseAllDocuments>;
  try {
    documents = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  } catch (err) {
    problems.push({ file, severity: 'error', message: `${file}: cannot parse: ${(err as Error).message}` });
    return { objects, problems };
  }
  const list = Array.isArray(documents) ? documents : [documents];
  for (const [i, doc] of list.entries()) {
    const document = i + 1;
    const where = `${file}, document ${document}`;
    if (doc.errors.length > 0) {
      const first = doc.errors[0]!;
      const line = lines.linePos(first.pos[0]).line;
      problems.push({ file, document, severity: 'error', message: `${where}${line ? ` (line ${line})` : ''}: invalid YAML: ${first.message.split('\n')[0]}` });
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      problems.push({ file, document, severity: 'error', message: `${where}: ${(err as Error).message}` });
      continue;
    }
    if (value === null || value === undefined) continue; // an empty document (e.g. a trailing ---)
    if (isList(value)) {
      for (const [j, item] of value.items.entries()) accept(item, `${where}, List item ${j + 1}`, file, document, objects, problems);
    } else {
      accept(value, where, file, document, objects, problems);
    }
  }
  return { objects, problems };
}

function isList(value: unknown): value is { items: unknown[] } {
  const v = value as { apiVersion?: unknown; kind?: unknown; items?: unknown };
  return typeof v === 'object' && v !== null && v.apiVersion === 'v1' && v.kind === 'List' && Array.isArray(v.items);
}

function accept(value: unknown, where: string, file: string, document: number, objects: ManifestObject[], problems: ManifestProblem[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    problems.push({ file, document, severity: 'error', message: `${where}: expected a Kubernetes object (a mapping with apiVersion and kind)` });
    return;
  }
  const raw = value as Record<string, unknown>;
  const { apiVersion, kind } = raw;
  if (typeof kind !== 'string' || typeof apiVersion !== 'string') {
    problems.push({ file, document, severity: 'error', message: `${where}: apiVersion and kind must be strings` });
    return;
  }
  if (!Object.hasOwn(LOCAL_KINDS, kind)) {
    problems.push({
      file,
      document,
      severity: 'ignored',
      message: `${where}: kind ${kind} is ignored (local mode reads ${Object.keys(LOCAL_KINDS).join(', ')})`,
    });
    return;
  }
  const localKind = kind as LocalKind;
  const metadata = raw.metadata as { name?: unknown; namespace?: unknown } | undefined;
  const shownName = typeof metadata?.name === 'string' ? metadata.name : '(no name)';
  const namespaced = !CLUSTER_SCOPED_KINDS.has(localKind);
  const namespace = namespaced ? (typeof metadata?.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : 'default') : undefined;
  const object = `${kind} ${namespace ? `${namespace}/` : ''}${shownName}`;
  const versions: readonly string[] = LOCAL_KINDS[localKind];
  const severity = OBJECT_SCOPED_KINDS.has(localKind) ? 'rejected' : 'error';
  const left = severity === 'rejected' ? '; this object is left out (not served), the rest of the file applies' : '';
  if (!versions.includes(apiVersion)) {
    const wanted = versions.length === 1 ? versions[0] : `one of ${versions.join(', ')}`;
    problems.push({ file, document, object, severity, message: `${where} (${object}): apiVersion must be ${wanted} for ${kind}, got ${apiVersion}${left}` });
    return;
  }
  const result = localKindSchema(localKind).safeParse(raw, PARSED_ONCE);
  if (!result.success) {
    const details = result.error.issues.slice(0, 5).map((issue) => `${fieldPath(issue.path)}: ${issue.message}`);
    const more = result.error.issues.length > 5 ? `; and ${result.error.issues.length - 5} more` : '';
    problems.push({ file, document, object, severity, message: `${where} (${object}): ${details.join('; ')}${more}${left}` });
    return;
  }
  const parsed: Record<string, unknown> = { ...raw, metadata: { ...(raw.metadata as object), ...(namespace ? { namespace } : {}) } };
  if (localKind === 'Secret') foldStringData(parsed);
  if (localKind === 'EndpointSlice') {
    const labels = (parsed.metadata as { labels?: Record<string, string> }).labels;
    if (!labels?.[SERVICE_NAME_LABEL]) {
      problems.push({
        file,
        document,
        object,
        severity: 'warning',
        message: `${where} (${object}): metadata.labels has no "${SERVICE_NAME_LABEL}", so the slice belongs to no Service`,
      });
    }
  }
  objects.push({ kind: localKind, namespace, name: shownName, object: parsed, file, document });
}

/** Like the API server: `stringData` entries are written into `data` (base64), then `stringData` is dropped. */
function foldStringData(secret: Record<string, unknown>): void {
  const stringData = secret.stringData as Record<string, string> | undefined;
  if (!stringData) return;
  const data: Record<string, string> = { ...((secret.data as Record<string, string> | undefined) ?? {}) };
  for (const [key, text] of Object.entries(stringData)) data[key] = Buffer.from(text, 'utf8').toString('base64');
  secret.data = data;
  delete secret.stringData;
}
