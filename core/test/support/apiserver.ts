/**
 * A real etcd + kube-apiserver on 127.0.0.1 for integration tests: the control plane alone, no nodes or
 * kubelets.
 *
 * Every run gets a fresh temp folder, free ports, a fresh serving certificate signed by a fresh test CA, fresh
 * service-account signing keys and a random static admin token. Authorization is RBAC, so a ServiceAccount token
 * minted with {@link TestApiServer.controllerToken} has exactly the rights that deploy/rbac.yaml grants.
 *
 * Starting takes a few seconds: share ONE server per test file with {@link useApiServer}. Processes are stopped in
 * `test.after.always` and, as a last resort, when the test worker exits.
 *
 * Binaries come from `$WARREN_TEST_BIN` (set by scripts/test.sh), else from the newest folder under
 * `${WARREN_TOOLS_DIR:-~/.cache/warren-tools}` that has both kube-apiserver and etcd.
 */
import { CoordinationV1Api, CoreV1Api, DiscoveryV1Api, KubeConfig, KubernetesObjectApi, NetworkingV1Api, type KubernetesObject } from '@kubernetes/client-node';
import type { TestFn } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { freePort } from './ports.js';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments } from 'yaml';
import { createTestCa, issueCert } from '../../src/edge-simulator/certs.js';
import { staticAccess } from '../../src/k8s/api/access.js';
import { KubeClient } from '../../src/k8s/api/client.js';

/** Namespace and ServiceAccount that deploy/rbac.yaml binds (the chart templates the same rules). */
export const CONTROLLER_NAMESPACE = 'warren-system';
export const CONTROLLER_SERVICE_ACCOUNT = 'warren';

const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const RBAC_FILE = join(REPO_ROOT, 'deploy', 'rbac.yaml');

export interface TestApiServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  readonly caPem: string;
  /** Folder holding certificates, keys, data and process logs. */
  readonly dir: string;
  /** A KubeConfig acting as a `system:masters` user (static token). */
  adminConfig(): KubeConfig;
  /** A KubeConfig that authenticates with a bearer token (e.g. a ServiceAccount token). */
  configForToken(token: string): KubeConfig;
  /** Warren's own API client acting as a `system:masters` user; closed when the server stops. */
  adminClient(): KubeClient;
  /** Warren's own API client with a bearer token; closed when the server stops. */
  clientForToken(token: string): KubeClient;
  /**
   * Applies deploy/rbac.yaml (creating the controller namespace) and mints a token for its ServiceAccount through
   * the TokenRequest API. The token has the rights of that RBAC and nothing more.
   */
  controllerToken(expirationSeconds?: number): Promise<string>;
  /** Creates a namespace with a unique name (prefix + counter) and returns its name. */
  createNamespace(prefix?: string): Promise<string>;
  /** Stops kube-apiserver and starts it again on the same port with the same etcd (watch-resilience tests). */
  restartApiServer(): Promise<void>;
  /** Stops kube-apiserver only; {@link startApiServerProcess} brings it back. */
  stopApiServerProcess(): Promise<void>;
  startApiServerProcess(): Promise<void>;
  /**
   * Compacts etcd's history up to its current revision (physically), so any watch resuming from an older
   * resourceVersion gets 410 Gone. Returns the revision compacted at.
   */
  compactEtcd(): Promise<number>;
  /**
   * The audit log so far, parsed, when started with `audit: true` (else empty): an independent witness of which
   * client wrote what, and when the apiserver received it. Survives apiserver restarts (one file, appended).
   */
  auditEvents(): AuditEvent[];
  /** Stops everything and removes the temp folder. Idempotent. */
  stop(): Promise<void>;
}

/** One audit.k8s.io/v1 Event as the log backend writes it (the fields tests read). */
export interface AuditEvent {
  readonly stage: string;
  readonly verb: string;
  readonly userAgent?: string;
  readonly user?: { readonly username?: string };
  readonly objectRef?: { readonly resource?: string; readonly subresource?: string; readonly namespace?: string; readonly name?: string; readonly apiGroup?: string };
  readonly responseStatus?: { readonly code?: number };
  /** The request body, for the resources the test policy logs at level Request (Leases). */
  readonly requestObject?: unknown;
  /** RFC 3339 with microseconds: when the apiserver received the request. */
  readonly requestReceivedTimestamp: string;
  /** RFC 3339 with microseconds: when the stage was reached (ResponseComplete: the answer was sent). */
  readonly stageTimestamp: string;
}

/** Microseconds since the epoch of an audit timestamp (`2026-12-07T06:50:01.123456Z`), for exact ordering. */
export function auditMicros(timestamp: string): bigint {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(timestamp);
  if (!m) throw new Error(`not an audit timestamp: ${timestamp}`);
  const seconds = BigInt(Date.parse(`${m[1]}Z`)) / 1000n;
  return seconds * 1_000_000n + BigInt((m[2] ?? '').padEnd(6, '0').slice(0, 6));
}

/**
 * The test audit policy: writes only (reads are noise here), at level Request for Leases so the holder each
 * write names is on record, at level Metadata for everything else (Secret contents never reach the log).
 */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Request
    resources: [{ group: coordination.k8s.io, resources: [leases] }]
    verbs: [create, update, patch, delete]
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
`;

/** Typed clients for the admin (test) side. */
export interface AdminClients {
  readonly core: CoreV1Api;
  readonly networking: NetworkingV1Api;
  readonly discovery: DiscoveryV1Api;
  readonly coordination: CoordinationV1Api;
  readonly objects: KubernetesObjectApi;
}

export function adminClients(server: TestApiServer): AdminClients {
  const kc = server.adminConfig();
  return {
    core: kc.makeApiClient(CoreV1Api),
    networking: kc.makeApiClient(NetworkingV1Api),
    discovery: kc.makeApiClient(DiscoveryV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
    objects: KubernetesObjectApi.makeApiClient(kc),
  };
}

/** Where kube-apiserver and etcd live; throws a clear error when they are missing. */
export function findTestBinaries(): { apiserver: string; etcd: string } {
  const candidates: string[] = [];
  if (process.env.WARREN_TEST_BIN) candidates.push(process.env.WARREN_TEST_BIN);
  const root = process.env.WARREN_TOOLS_DIR ?? join(homedir(), '.cache', 'warren-tools');
  if (existsSync(root)) {
    const dirs = readdirSync(root)
      .map((d) => join(root, d))
      .filter((d) => statSync(d).isDirectory())
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    candidates.push(...dirs);
  }
  for (const dir of candidates) {
    const apiserver = join(dir, 'kube-apiserver');
    const etcd = join(dir, 'etcd');
    if (existsSync(apiserver) && existsSync(etcd)) return { apiserver, etcd };
  }
  throw new Error(`kube-apiserver and etcd not found (looked in ${candidates.join(', ') || root}); run "bash scripts/test-binaries.sh" or "npm test"`);
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // Last resort when a worker dies without running hooks: never leave servers behind.
    process.once('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
}

async function stopProcess(child: ChildProcess | undefined, graceMs = 5_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export interface StartOptions {
  /** Extra kube-apiserver flags, e.g. `--watch-cache=false`; a `--disable-admission-plugins=` replaces the default list. */
  extraArgs?: readonly string[];
  /** Bound for /readyz; default 90 s (a cold start on 2 busy cores can be slow). */
  readyTimeoutMs?: number;
  /** Write an audit log of every write (see {@link TestApiServer.auditEvents}). Default false. */
  audit?: boolean;
  /** Where etcd's and kube-apiserver's ports come from (default: {@link freePort}); for the harness's own tests. */
  pickPort?: () => Promise<number>;
}

/** How many times a start is made on fresh ports when a port was taken before etcd or kube-apiserver bound it. */
const PORT_ATTEMPTS = 3;

/**
 * Starts etcd and kube-apiserver; resolves once /readyz answers ok. Ports are picked free but not held until the
 * processes bind them, so another process can take one in between (an outgoing connection's local port, another
 * test's server): such a start is made again on fresh ports.
 */
export async function startApiServer(options: StartOptions = {}): Promise<TestApiServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startApiServerOnce(options);
    } catch (err) {
      if (attempt >= PORT_ATTEMPTS || !/address already in use/.test((err as Error).message)) throw err;
    }
  }
}

async function startApiServerOnce(options: StartOptions): Promise<TestApiServer> {
  const bins = findTestBinaries();
  const ca = createTestCa('Warren Test Kubernetes CA');
  const dir = ca.dir;
  const serving = issueCert(ca, { dns: ['localhost'], ips: ['127.0.0.1'], commonName: 'kube-apiserver' });
  const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const saKey = join(dir, 'sa.key');
  const saPub = join(dir, 'sa.pub');
  writeFileSync(saKey, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(saPub, sa.publicKey.export({ type: 'spki', format: 'pem' }));
  const adminToken = randomBytes(24).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${adminToken},warren-test-admin,warren-test-admin-uid,system:masters\n`, { mode: 0o600 });

  const pick = options.pickPort ?? freePort;
  const [etcdClient, etcdPeer, apiPort] = [await pick(), await pick(), await pick()];
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;
  const url = `https://127.0.0.1:${apiPort}`;
  mkdirSync(join(dir, 'certs'), { recursive: true });
  const auditLog = join(dir, 'audit.log');
  const auditArgs: string[] = [];
  if (options.audit) {
    writeFileSync(join(dir, 'audit-policy.yaml'), AUDIT_POLICY);
    auditArgs.push(`--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json', '--audit-log-mode=blocking');
  }

  let etcd: ChildProcess | undefined;
  let apiserver: ChildProcess | undefined;
  let apiStarts = 0;

  const startEtcd = async (): Promise<void> => {
    const log = join(dir, 'etcd.log');
    etcd = spawn(
      bins.etcd,
      [
        '--name=warren-test',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=warren-test=http://127.0.0.1:${etcdPeer}`,
        '--unsafe-no-fsync=true',
        '--log-level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    track(etcd);
    const out = createWriteStream(log);
    etcd.stdout!.pipe(out);
    etcd.stderr!.pipe(out);
    await waitFor(`etcd (${log})`, 30_000, async () => {
      if (etcd!.exitCode !== null) throw new Error(`etcd exited with ${etcd!.exitCode}:\n${tail(log)}`);
      const res = await fetch(`${etcdUrl}/health`).catch(() => undefined);
      return res?.ok === true;
    });
  };

  const startApi = async (): Promise<void> => {
    const log = join(dir, `kube-apiserver-${++apiStarts}.log`);
    apiserver = spawn(
      bins.apiserver,
      [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        '--advertise-address=127.0.0.1',
        '--endpoint-reconciler-type=none',
        `--tls-cert-file=${serving.certFile}`,
        `--tls-private-key-file=${serving.keyFile}`,
        `--client-ca-file=${ca.certFile}`,
        `--token-auth-file=${join(dir, 'tokens.csv')}`,
        '--authorization-mode=RBAC',
        `--service-account-issuer=${url}`,
        `--service-account-key-file=${saPub}`,
        `--service-account-signing-key-file=${saKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        // Repeating this list flag would add to it, so a caller's own list replaces the default one.
        ...((options.extraArgs ?? []).some((a) => a.startsWith('--disable-admission-plugins='))
          ? []
          : ['--disable-admission-plugins=ServiceAccount,MutatingAdmissionWebhook,ValidatingAdmissionWebhook']),
        '--allow-privileged=true',
        `--cert-dir=${join(dir, 'certs')}`,
        '--enable-priority-and-fairness=false',
        '--profiling=false',
        ...auditArgs,
        ...(options.extraArgs ?? []),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    track(apiserver);
    const out = createWriteStream(log);
    apiserver.stdout!.pipe(out);
    apiserver.stderr!.pipe(out);
    const child = apiserver;
    await waitFor(`kube-apiserver /readyz (${log})`, options.readyTimeoutMs ?? 90_000, async () => {
      if (child.exitCode !== null) throw new Error(`kube-apiserver exited with ${child.exitCode}:\n${tail(log)}`);
      return readyz(url, ca.certPem, adminToken);
    });
  };

  let stopped = false;
  const clients = new Set<KubeClient>();
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all([...clients].map((c) => c.close()));
    await stopProcess(apiserver);
    await stopProcess(etcd);
    if (!process.env.WARREN_KEEP_TEST_DIRS) rmSync(dir, { recursive: true, force: true });
  };

  try {
    await startEtcd();
    await startApi();
  } catch (err) {
    await stop();
    throw err;
  }

  const configForToken = (token: string): KubeConfig => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'warren-test', server: url, caData: Buffer.from(ca.certPem).toString('base64') }],
      users: [{ name: 'user', token }],
      contexts: [{ name: 'warren-test', cluster: 'warren-test', user: 'user' }],
      currentContext: 'warren-test',
    });
    return kc;
  };

  const clientForToken = (token: string): KubeClient => {
    const client = new KubeClient(staticAccess({ server: url, caPem: ca.certPem, token, source: 'test apiserver' }));
    clients.add(client);
    return client;
  };

  let nsCounter = 0;
  const server: TestApiServer = {
    url,
    caPem: ca.certPem,
    dir,
    adminConfig: () => configForToken(adminToken),
    configForToken,
    adminClient: () => clientForToken(adminToken),
    clientForToken,
    async controllerToken(expirationSeconds = 3600) {
      const admin = adminClients(server);
      await applyRbac(admin);
      const res = await admin.core.createNamespacedServiceAccountToken({
        namespace: CONTROLLER_NAMESPACE,
        name: CONTROLLER_SERVICE_ACCOUNT,
        body: { spec: { audiences: [url], expirationSeconds } },
      });
      const token = res.status?.token;
      if (!token) throw new Error('TokenRequest returned no token');
      return token;
    },
    async createNamespace(prefix = 'test') {
      const name = `${prefix}-${process.pid}-${++nsCounter}`;
      await adminClients(server).core.createNamespace({ body: { metadata: { name } } });
      return name;
    },
    async restartApiServer() {
      await stopProcess(apiserver);
      await startApi();
    },
    stopApiServerProcess: () => stopProcess(apiserver),
    async compactEtcd() {
      const range = await fetch(`${etcdUrl}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('/').toString('base64') }) });
      const revision = Number(((await range.json()) as { header?: { revision?: string } }).header?.revision);
      if (!Number.isFinite(revision)) throw new Error('etcd did not report its revision');
      const res = await fetch(`${etcdUrl}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: String(revision), physical: true }) });
      if (!res.ok) throw new Error(`etcd compaction failed: ${res.status} ${await res.text()}`);
      return revision;
    },
    startApiServerProcess: startApi,
    auditEvents() {
      if (!options.audit || !existsSync(auditLog)) return [];
      return readFileSync(auditLog, 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as AuditEvent];
          } catch {
            return []; // a line still being written
          }
        });
    },
    stop,
  };
  return server;
}

/** Creates the objects of deploy/rbac.yaml (idempotent), creating their namespace first. */
export async function applyRbac(admin: AdminClients): Promise<void> {
  await admin.core.createNamespace({ body: { metadata: { name: CONTROLLER_NAMESPACE } } }).catch(ignoreConflict);
  for (const obj of loadRbacObjects()) {
    await admin.objects.create(obj).catch(ignoreConflict);
  }
}

/** The objects in deploy/rbac.yaml, parsed. */
export function loadRbacObjects(): KubernetesObject[] {
  return parseAllDocuments(readFileSync(RBAC_FILE, 'utf8'))
    .map((doc) => doc.toJS() as KubernetesObject | null)
    .filter((obj): obj is KubernetesObject => obj !== null && typeof obj === 'object');
}

function ignoreConflict(err: unknown): void {
  if ((err as { code?: number }).code !== 409) throw err;
}

async function readyz(url: string, caPem: string, token: string): Promise<boolean> {
  const { request } = await import('node:https');
  return new Promise((resolve) => {
    const req = request(`${url}/readyz`, { ca: caPem, headers: { authorization: `Bearer ${token}` }, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Polls `check` every 200 ms until it returns true; throws after `timeoutMs` naming `what`. */
async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/**
 * Registers `serial.before`/`after.always` hooks that start one server for the whole test file and stop it
 * afterwards (also when tests fail). Call the returned function inside tests to get the server. Further setup
 * hooks in the file that need the server must be `test.serial.before` too (ava runs plain `before` hooks
 * concurrently).
 */
export function useApiServer(test: TestFn, options: StartOptions = {}): () => TestApiServer {
  let server: TestApiServer | undefined;
  test.serial.before(async () => {
    server = await startApiServer(options);
  });
  test.after.always(async () => {
    await server?.stop();
  });
  return () => {
    if (!server) throw new Error('the test apiserver did not start (see the before hook failure)');
    return server;
  };
}
