import { StringDecoder } from 'node:string_decoder';
import { Agent, request, type Dispatcher } from 'undici';
import type { ClientCertificate, ClusterAccess, Credentials } from './access.js';

/**
 * A small Kubernetes REST client: JSON over one undici connection pool, for exactly the calls Warren makes
 * (paginated lists, watches, get/create/replace/patch/delete of a handful of kinds).
 *
 * Why not `@kubernetes/client-node` at run time: importing it loads its generated models and APIs as one module
 * graph, about 80 MB of resident memory before the first object — a third of the controller's budget at 10,000
 * Ingresses — and it deserializes every object into model classes. Objects here stay the JSON the API server sent
 * (timestamps are RFC 3339 strings); the client-node model interfaces are still used as types.
 */
export class KubeClient {
  readonly #access: ClusterAccess;
  readonly #userAgent: string;
  /** Set on a {@link fenced} view: the client that owns the connection pool. */
  #base: KubeClient | undefined;
  #fence: WriteFence | undefined;
  #agent: Agent | undefined;
  #agentCert: ClientCertificate | undefined;
  readonly #retired = new Set<Agent>();
  #closed = false;

  constructor(access: ClusterAccess, options: { readonly userAgent?: string } = {}) {
    this.#access = access;
    this.#userAgent = options.userAgent ?? 'warren';
  }

  /**
   * A view of this client (same credentials and connection pool) whose writes pass `fence` first: every call
   * other than GET asks {@link WriteFence.admit} right before it is sent, is refused when the fence throws, and
   * is aborted by the signal the fence returns. Reads and watches are not fenced. Closing the view is a no-op.
   */
  fenced(fence: WriteFence): KubeClient {
    const view = new KubeClient(this.#access, { userAgent: this.#userAgent });
    view.#base = this.#base ?? this;
    view.#fence = fence;
    return view;
  }

  /** Where the connection settings came from (never secrets). */
  get source(): string {
    return this.#access.source;
  }

  get<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('GET', path, options);
  }

  post<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('POST', path, { ...options, body });
  }

  put<T>(path: string, body: unknown, options?: RequestOptions): Promise<T> {
    return this.request<T>('PUT', path, { ...options, body });
  }

  /** `kind` picks the Content-Type: RFC 6902 JSON patch, RFC 7386 merge patch, or strategic merge patch. */
  patch<T>(path: string, body: unknown, kind: 'json' | 'merge' | 'strategic', options?: RequestOptions): Promise<T> {
    return this.request<T>('PATCH', path, { ...options, body, contentType: PATCH_TYPES[kind] });
  }

  delete<T>(path: string, options?: RequestOptions): Promise<T> {
    return this.request<T>('DELETE', path, options);
  }

  /**
   * One call; resolves with the parsed JSON body. Non-2xx answers reject with {@link KubeApiError} carrying the
   * status and the API's Status `reason` and `message`. A 401 is retried once with freshly fetched credentials
   * (rotated token files, expired exec-plugin tokens).
   */
  async request<T>(method: string, path: string, options: RequestOptions & { body?: unknown; contentType?: string } = {}): Promise<T> {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const res = await this.#send(method, this.#url(path, options.query), {
      body: payload,
      contentType: payload === undefined ? undefined : (options.contentType ?? 'application/json'),
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    });
    if (res.statusCode < 200 || res.statusCode >= 300) throw await KubeApiError.from(method, path, res.statusCode, res.body);
    const text = await res.body.text();
    return (text ? parseJson(text, `${method} ${path}`) : undefined) as T;
  }

  /**
   * Streams a watch (`?watch=true`) and calls `onEvent` for each event, in order, synchronously as lines arrive.
   * Resolves when the server ends the stream (`'ended'`, e.g. its timeoutSeconds), when nothing arrived for
   * `idleTimeoutMs` (`'idle'`: a silent stream is taken as a dead connection) or when `signal` aborts
   * (`'aborted'`). Rejects with {@link KubeApiError} when the server refuses the watch, and with the cause when the
   * connection fails or a line is not JSON or exceeds {@link MAX_WATCH_LINE} characters.
   */
  async watch(
    path: string,
    query: Query,
    onEvent: (type: string, object: unknown) => void,
    options: { readonly signal: AbortSignal; readonly idleTimeoutMs?: number | undefined },
  ): Promise<'ended' | 'idle' | 'aborted'> {
    const { signal } = options;
    const idle = options.idleTimeoutMs ?? 150_000;
    try {
      const res = await this.#send('GET', this.#url(path, { ...query, watch: true }), { signal, timeoutMs: idle });
      if (res.statusCode !== 200) throw await KubeApiError.from('WATCH', path, res.statusCode, res.body);
      const decoder = new StringDecoder('utf8');
      const emit = (line: string): void => {
        if (!line.trim()) return;
        const event = parseJson(line, `watch ${path}`) as { type?: unknown; object?: unknown };
        onEvent(String(event.type), event.object);
      };
      let pending = '';
      for await (const chunk of res.body) {
        const text = decoder.write(chunk as Buffer);
        let nl = text.indexOf('\n'); // search only the new text: a long line is not rescanned per chunk
        if (nl < 0) {
          pending += text;
        } else {
          emit(pending + text.slice(0, nl));
          let start = nl + 1;
          for (nl = text.indexOf('\n', start); nl >= 0; nl = text.indexOf('\n', start)) {
            emit(text.slice(start, nl));
            start = nl + 1;
          }
          pending = text.slice(start);
        }
        if (pending.length > MAX_WATCH_LINE) throw new Error(`watch ${path}: an event exceeds ${MAX_WATCH_LINE} characters`);
      }
      emit(pending + decoder.end()); // a last event without its newline still counts
      return 'ended';
    } catch (err) {
      if (signal.aborted) return 'aborted';
      const code = (err as { code?: string }).code;
      if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') return 'idle';
      throw err;
    }
  }

  /** Closes the connection pool; in-flight requests fail, later ones reject. */
  async close(): Promise<void> {
    if (this.#base) return;
    this.#closed = true;
    const agents = [...this.#retired, ...(this.#agent ? [this.#agent] : [])];
    this.#agent = undefined;
    this.#retired.clear();
    await Promise.all(agents.map((a) => a.destroy().catch(() => undefined)));
  }

  /**
   * Sends one request with the current credentials; a 401 is answered once more with freshly fetched ones (rotated
   * token files, expired exec-plugin tokens). `timeoutMs` bounds the wait for the head and between body chunks.
   */
  async #send(
    method: string,
    url: string,
    init: { readonly body?: string | undefined; readonly contentType?: string | undefined; readonly signal?: AbortSignal | undefined; readonly timeoutMs: number },
  ): Promise<Dispatcher.ResponseData> {
    const fence = method === 'GET' ? undefined : this.#fence;
    // undici reads 0 as "no timeout": a caller with an almost spent deadline still gets a bound.
    const timeout = Math.max(1, Math.ceil(Math.min(init.timeoutMs, fence?.timeoutMs ?? Infinity)));
    for (let attempt = 0; ; attempt++) {
      const creds = await this.#access.credentials(attempt > 0);
      // Admitted at the last moment before sending: nothing awaited between the check and the write.
      const term = fence?.admit();
      const signal = term && init.signal ? AbortSignal.any([init.signal, term]) : (term ?? init.signal);
      const res = await request(url, {
        method: method as Dispatcher.HttpMethod,
        headers: this.#headers(creds, init.contentType),
        body: init.body,
        dispatcher: (this.#base ?? this).#dispatcher(creds),
        signal,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      if (res.statusCode !== 401 || attempt > 0) return res;
      await res.body.dump();
    }
  }

  #url(path: string, query: Query | undefined): string {
    let url = this.#access.server + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    return url;
  }

  #headers(creds: Credentials, contentType: string | undefined): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', 'user-agent': this.#userAgent };
    if (creds.authorization) h.authorization = creds.authorization;
    if (contentType) h['content-type'] = contentType;
    return h;
  }

  /** One pool for the client's lifetime; replaced only when an exec plugin hands out a new client certificate. */
  #dispatcher(creds: Credentials): Agent {
    if (this.#closed) throw new Error(`the Kubernetes client for ${this.#access.source} is closed`);
    const cert = creds.clientCert ?? this.#access.clientCert;
    if (this.#agent && cert === this.#agentCert) return this.#agent;
    if (this.#agent) {
      // Requests in flight (watches) keep the old pool until they end; it is closed when the client closes.
      const old = this.#agent;
      this.#retired.add(old);
      void old.close().then(
        () => this.#retired.delete(old),
        () => undefined,
      );
    }
    const a = this.#access;
    this.#agentCert = cert;
    this.#agent = new Agent({
      keepAliveTimeout: 30_000,
      connect: {
        ...(a.caPem ? { ca: a.caPem } : {}),
        ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}),
        ...(a.tlsServerName ? { servername: a.tlsServerName } : {}),
        rejectUnauthorized: !a.insecureSkipTlsVerify,
      },
    });
    return this.#agent;
  }
}

/**
 * Decides whether a write may be sent now (leader-only work: see `LeaderElector`). `admit` throws when it may
 * not, and otherwise returns a signal that aborts the write when the permission ends.
 */
export interface WriteFence {
  admit(): AbortSignal;
  /** Upper bound on each fenced call's wait (head and between body chunks), over the caller's own. */
  readonly timeoutMs?: number | undefined;
}

export type Query = Readonly<Record<string, string | number | boolean | undefined>>;

export interface RequestOptions {
  readonly query?: Query | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Bound on waiting for the response head and between body chunks. Default 30 s. */
  readonly timeoutMs?: number | undefined;
}

const DEFAULT_TIMEOUT_MS = 30_000;
/** The API server stores objects up to ~1.5 MiB; a watch line far beyond that is garbage, not an object. */
export const MAX_WATCH_LINE = 16 * 1024 * 1024;

const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
} as const;

/**
 * A refused API call. `statusCode` is the HTTP status; `body` the API's Status object when it sent one (its
 * `reason` — `NotFound`, `Conflict`, `Expired`, `Forbidden` … — and `message`). Never holds request headers.
 */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  readonly statusCode: number;
  readonly body: { readonly reason?: string; readonly message?: string; readonly code?: number } | undefined;

  constructor(message: string, statusCode: number, body: KubeApiError['body']) {
    super(message);
    this.statusCode = statusCode;
    this.body = body;
  }

  static async from(method: string, path: string, statusCode: number, body: Dispatcher.ResponseData['body']): Promise<KubeApiError> {
    let status: KubeApiError['body'];
    try {
      const text = await body.text();
      const parsed = JSON.parse(text) as Record<string, unknown>;
      if (parsed && typeof parsed === 'object') {
        status = {
          reason: typeof parsed.reason === 'string' ? parsed.reason : undefined,
          message: typeof parsed.message === 'string' ? parsed.message : undefined,
          code: typeof parsed.code === 'number' ? parsed.code : undefined,
        };
      }
    } catch {
      // Not a Status object (a proxy's HTML page, an empty body): the HTTP status says enough.
    }
    return new KubeApiError(
      `${method} ${path}: HTTP ${statusCode}${status?.reason ? ` ${status.reason}` : ''}${status?.message ? `: ${status.message}` : ''}`,
      statusCode,
      status,
    );
  }
}

/** JSON.parse whose error names the call but never quotes the input (it may hold Secret data). */
function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`${what}: the API server sent a body that is not valid JSON (${text.length} characters)`);
  }
}

/**
 * The REST path of a resource collection or object: `apiPath('networking.k8s.io/v1', 'ingresses', 'ns', 'x',
 * 'status')` → `/apis/networking.k8s.io/v1/namespaces/ns/ingresses/x/status`. The core group is `'v1'`.
 * Namespace and name are URL-encoded.
 */
export function apiPath(groupVersion: string, resource: string, namespace?: string, name?: string, subresource?: string): string {
  let p = groupVersion === 'v1' ? '/api/v1' : `/apis/${groupVersion}`;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${resource}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}
