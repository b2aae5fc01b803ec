import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, WarrenError } from '../../errors.js';
import { execCredentialSource, type ExecConfig } from './exec-credentials.js';

/**
 * How to reach one kube-apiserver and who to be there: the result of reading a kubeconfig or the pod's service
 * account. Holds no live connection; {@link KubeClient} builds one from it.
 *
 * Contract: `credentials()` is called before every request and must be cheap when nothing changed; it returns
 * the `Authorization` header value (or undefined) and, for exec plugins that issue client certificates, the
 * certificate to present. `credentials(true)` is called once after a 401 and must fetch fresh credentials when
 * the source can (token files, exec plugins); static credentials return the same answer.
 */
export interface ClusterAccess {
  /** `https://host:port` plus an optional path prefix, without a trailing slash. */
  readonly server: string;
  /** PEM of the CA bundle that verifies the server; undefined uses Node's default roots. */
  readonly caPem?: string | undefined;
  /** `insecure-skip-tls-verify: true` in the kubeconfig. */
  readonly insecureSkipTlsVerify?: boolean | undefined;
  /** Name to verify the server certificate against (`tls-server-name`), when it differs from the URL's host. */
  readonly tlsServerName?: string | undefined;
  /** Static client certificate and key (PEM). */
  readonly clientCert?: ClientCertificate | undefined;
  credentials(refresh?: boolean): Promise<Credentials>;
  /** Where the settings came from, for logs and errors: e.g. `in-cluster service account` or `context kind (~/.kube/config)`. Never holds secrets. */
  readonly source: string;
}

export interface ClientCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface Credentials {
  readonly authorization?: string | undefined;
  readonly clientCert?: ClientCertificate | undefined;
}

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** A service account token file is re-read at most once a minute; bound tokens rotate hourly. */
const TOKEN_FILE_REFRESH_MS = 60_000;

/**
 * Loads cluster access in the order the `kubernetes.kubeconfig` setting documents:
 *  1. the kubeconfig file named by the setting, when set;
 *  2. in-cluster: the pod's service account (KUBERNETES_SERVICE_HOST plus the mounted token);
 *  3. `$KUBECONFIG` (a list; the first file to define a name wins, as kubectl merges);
 *  4. `~/.kube/config`.
 * Throws a terminal WarrenError naming the file and field when none is usable.
 */
export function loadClusterAccess(settings: { readonly kubeconfig?: string | undefined }, env: NodeJS.ProcessEnv = process.env): ClusterAccess {
  try {
    if (settings.kubeconfig) return kubeconfigAccess([settings.kubeconfig], env);
    if (env.KUBERNETES_SERVICE_HOST && existsSync(join(SERVICE_ACCOUNT_DIR, 'token'))) return inClusterAccess(env);
    if (env.KUBECONFIG) return kubeconfigAccess(env.KUBECONFIG.split(delimiter).filter(Boolean), env);
    const home = join(homedir(), '.kube', 'config');
    if (existsSync(home)) return kubeconfigAccess([home], env);
    throw new Error('no kubeconfig setting, not running in a cluster, no $KUBECONFIG and no ~/.kube/config');
  } catch (err) {
    if (err instanceof WarrenError) throw err;
    throw new WarrenError(ErrorCode.ConfigInvalid, `cannot load the Kubernetes client configuration: ${(err as Error).message}`, { terminal: true, cause: err });
  }
}

/** The pod's service account: the token file is re-read as the kubelet rotates it. */
export function inClusterAccess(env: NodeJS.ProcessEnv = process.env, dir = SERVICE_ACCOUNT_DIR): ClusterAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  if (!host) throw new Error('KUBERNETES_SERVICE_HOST is not set');
  const caFile = join(dir, 'ca.crt');
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    caPem: existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined,
    credentials: tokenFileSource(join(dir, 'token')),
    source: 'in-cluster service account',
  };
}

/** Access with fixed settings (tests, tools): a bearer token or nothing. */
export function staticAccess(options: { server: string; caPem?: string; token?: string; clientCert?: ClientCertificate; source?: string }): ClusterAccess {
  const creds: Credentials = { authorization: options.token ? `Bearer ${options.token}` : undefined };
  return {
    server: options.server.replace(/\/+$/, ''),
    caPem: options.caPem,
    clientCert: options.clientCert,
    credentials: () => Promise.resolve(creds),
    source: options.source ?? options.server,
  };
}

/** One kubeconfig file as YAML text (a `kind: Config` document), with the folder its relative paths resolve against. */
export interface KubeconfigFile {
  readonly path: string;
  readonly text: string;
}

/** Reads the kubeconfig files (merged in kubectl's order) and resolves the current context. */
export function kubeconfigAccess(paths: readonly string[], env: NodeJS.ProcessEnv = process.env, context?: string): ClusterAccess {
  const files: KubeconfigFile[] = [];
  for (const p of paths) {
    const path = resolve(p.startsWith('~/') ? join(homedir(), p.slice(2)) : p);
    if (paths.length > 1 && !existsSync(path)) continue; // kubectl skips missing entries of $KUBECONFIG
    files.push({ path, text: readFileSync(path, 'utf8') });
  }
  if (files.length === 0) throw new Error(`none of the kubeconfig files exist: ${paths.join(', ')}`);
  return parseKubeconfig(files, env, context);
}

interface NamedEntry<K extends string, V> {
  readonly name: string;
  readonly value: V;
  readonly file: string;
  readonly field: K;
}

type Doc = Record<string, unknown>;

/**
 * Resolves access from parsed kubeconfig documents. Supported, as kubectl reads them: `server`,
 * `certificate-authority(-data)`, `insecure-skip-tls-verify`, `tls-server-name`; users with `token`,
 * `tokenFile`, `client-certificate(-data)` + `client-key(-data)`, `username`/`password`, or an `exec` credential
 * plugin (client.authentication.k8s.io v1 and v1beta1). Not supported, with an error naming the field:
 * `auth-provider` (removed from kubectl; use the provider's exec plugin) and `proxy-url`.
 */
export function parseKubeconfig(files: readonly KubeconfigFile[], env: NodeJS.ProcessEnv = process.env, contextName?: string): ClusterAccess {
  const clusters = new Map<string, NamedEntry<'cluster', Doc>>();
  const users = new Map<string, NamedEntry<'user', Doc>>();
  const contexts = new Map<string, NamedEntry<'context', Doc>>();
  let current: string | undefined;
  for (const file of files) {
    let doc: unknown;
    try {
      doc = parseYaml(file.text);
    } catch (err) {
      throw new Error(`${file.path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${file.path} is not a kubeconfig (expected a mapping)`);
    const d = doc as Doc;
    collect(d, 'clusters', 'cluster', file.path, clusters);
    collect(d, 'users', 'user', file.path, users);
    collect(d, 'contexts', 'context', file.path, contexts);
    if (current === undefined && typeof d['current-context'] === 'string' && d['current-context']) current = d['current-context'];
  }
  const name = contextName ?? current;
  if (!name) throw new Error(`no current-context in ${files.map((f) => f.path).join(', ')}`);
  const ctx = contexts.get(name);
  if (!ctx) throw new Error(`context "${name}" is not defined in ${files.map((f) => f.path).join(', ')}`);
  const clusterName = str(ctx.value, 'cluster', `contexts[${name}].context`, ctx.file);
  const cluster = clusterName ? clusters.get(clusterName) : undefined;
  if (!cluster) throw new Error(`cluster "${clusterName ?? ''}" of context "${name}" is not defined (${ctx.file})`);
  const userName = str(ctx.value, 'user', `contexts[${name}].context`, ctx.file);
  const user = userName ? users.get(userName) : undefined;
  if (userName && !user) throw new Error(`user "${userName}" of context "${name}" is not defined (${ctx.file})`);

  const c = cluster.value;
  const cWhere = `clusters[${cluster.name}].cluster`;
  const server = str(c, 'server', cWhere, cluster.file);
  if (!server) throw new Error(`${cWhere}.server is missing (${cluster.file})`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`${cWhere}.server is not a URL: ${JSON.stringify(server)} (${cluster.file})`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`${cWhere}.server must be http(s): ${server} (${cluster.file})`);
  if (c['proxy-url'] !== undefined) throw new Error(`${cWhere}.proxy-url is not supported (${cluster.file})`);
  const caPem = pem(c, 'certificate-authority', cWhere, cluster.file);

  const u = user?.value ?? {};
  const uWhere = `users[${user?.name ?? ''}].user`;
  const uFile = user?.file ?? ctx.file;
  if (u['auth-provider'] !== undefined) {
    throw new Error(`${uWhere}.auth-provider is not supported (kubectl removed auth providers); use the provider's exec credential plugin (${uFile})`);
  }
  const certPem = pem(u, 'client-certificate', uWhere, uFile);
  const keyPem = pem(u, 'client-key', uWhere, uFile);
  if ((certPem === undefined) !== (keyPem === undefined)) throw new Error(`${uWhere} needs both client-certificate and client-key (${uFile})`);

  let credentials: ClusterAccess['credentials'];
  const token = str(u, 'token', uWhere, uFile);
  const tokenFile = str(u, 'tokenFile', uWhere, uFile);
  const username = str(u, 'username', uWhere, uFile);
  if (u.exec !== undefined) {
    credentials = execCredentialSource(
      execConfig(u.exec, `${uWhere}.exec`, uFile),
      { server: url.href.replace(/\/$/, ''), caPem, insecureSkipTlsVerify: c['insecure-skip-tls-verify'] === true },
      env,
    );
  } else if (token) {
    const fixed: Credentials = { authorization: `Bearer ${token}` };
    credentials = () => Promise.resolve(fixed);
  } else if (tokenFile) {
    credentials = tokenFileSource(resolveFrom(uFile, tokenFile));
  } else if (username) {
    const fixed: Credentials = { authorization: `Basic ${Buffer.from(`${username}:${str(u, 'password', uWhere, uFile) ?? ''}`).toString('base64')}` };
    credentials = () => Promise.resolve(fixed);
  } else {
    const none: Credentials = {};
    credentials = () => Promise.resolve(none);
  }
  const tlsServerName = str(c, 'tls-server-name', cWhere, cluster.file);
  return {
    server: `${url.origin}${url.pathname.replace(/\/+$/, '')}`,
    caPem,
    insecureSkipTlsVerify: c['insecure-skip-tls-verify'] === true,
    tlsServerName: tlsServerName || undefined,
    clientCert: certPem && keyPem ? { certPem, keyPem } : undefined,
    credentials,
    source: `context ${name} (${ctx.file})`,
  };
}

function collect<K extends 'cluster' | 'user' | 'context'>(doc: Doc, list: string, field: K, file: string, into: Map<string, NamedEntry<K, Doc>>): void {
  const entries = doc[list];
  if (entries === undefined || entries === null) return;
  if (!Array.isArray(entries)) throw new Error(`${list} must be a list (${file})`);
  for (const [i, entry] of entries.entries()) {
    const e = entry as Doc | null;
    const name = e?.name;
    if (typeof name !== 'string' || !name) throw new Error(`${list}[${i}].name is missing (${file})`);
    const value = e?.[field];
    if (value !== undefined && value !== null && (typeof value !== 'object' || Array.isArray(value))) throw new Error(`${list}[${name}].${field} must be a mapping (${file})`);
    if (!into.has(name)) into.set(name, { name, value: (value ?? {}) as Doc, file, field });
  }
}

function str(obj: Doc, key: string, where: string, file: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`${where}.${key} must be a string (${file})`);
  return v;
}

/** Reads `<key>-data` (base64 PEM) or `<key>` (a file, relative to the kubeconfig). */
function pem(obj: Doc, key: string, where: string, file: string): string | undefined {
  const data = str(obj, `${key}-data`, where, file);
  if (data) return Buffer.from(data, 'base64').toString('utf8');
  const path = str(obj, key, where, file);
  if (!path) return undefined;
  const full = resolveFrom(file, path);
  try {
    return readFileSync(full, 'utf8');
  } catch (err) {
    throw new Error(`${where}.${key}: cannot read ${full}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (${file})`);
  }
}

function resolveFrom(kubeconfigFile: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dirname(kubeconfigFile), path);
}

function execConfig(raw: unknown, where: string, file: string): ExecConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where} must be a mapping (${file})`);
  const e = raw as Doc;
  const command = str(e, 'command', where, file);
  if (!command) throw new Error(`${where}.command is missing (${file})`);
  const apiVersion = str(e, 'apiVersion', where, file) ?? 'client.authentication.k8s.io/v1';
  if (apiVersion !== 'client.authentication.k8s.io/v1' && apiVersion !== 'client.authentication.k8s.io/v1beta1') {
    throw new Error(`${where}.apiVersion ${JSON.stringify(apiVersion)} is not supported; use client.authentication.k8s.io/v1 or v1beta1 (${file})`);
  }
  const args = e.args ?? [];
  if (!Array.isArray(args) || args.some((a) => typeof a !== 'string')) throw new Error(`${where}.args must be a list of strings (${file})`);
  const envList = e.env ?? [];
  if (!Array.isArray(envList)) throw new Error(`${where}.env must be a list (${file})`);
  const extraEnv: Record<string, string> = {};
  for (const [i, item] of envList.entries()) {
    const it = item as Doc | null;
    if (typeof it?.name !== 'string' || typeof it.value !== 'string') throw new Error(`${where}.env[${i}] needs a string name and value (${file})`);
    extraEnv[it.name] = it.value;
  }
  // A bare command name is looked up on PATH; a relative path with a slash is relative to the kubeconfig (kubectl).
  const resolvedCommand = command.includes('/') && !isAbsolute(command) ? resolveFrom(file, command) : command;
  return { apiVersion, command: resolvedCommand, args: args as string[], env: extraEnv, provideClusterInfo: e.provideClusterInfo === true, where: `${where} (${file})` };
}

/** Bearer token from a file, re-read at most once a minute or when a request was refused (401). */
export function tokenFileSource(path: string, now: () => number = Date.now): ClusterAccess['credentials'] {
  let cached: Credentials | undefined;
  let readAt = 0;
  return (refresh = false) => {
    if (!cached || refresh || now() - readAt >= TOKEN_FILE_REFRESH_MS) {
      try {
        const token = readFileSync(path, 'utf8').trim();
        cached = { authorization: token ? `Bearer ${token}` : undefined };
        readAt = now();
      } catch (err) {
        if (!cached) return Promise.reject(new Error(`cannot read the token file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`));
        // Keep the last token while the file is being replaced; the next call tries again.
      }
    }
    return Promise.resolve(cached);
  };
}
