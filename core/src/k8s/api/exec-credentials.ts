import { execFile } from 'node:child_process';
import type { ClusterAccess, Credentials } from './access.js';

/** A kubeconfig `users[].user.exec` entry, validated. */
export interface ExecConfig {
  readonly apiVersion: 'client.authentication.k8s.io/v1' | 'client.authentication.k8s.io/v1beta1';
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly provideClusterInfo: boolean;
  /** Field and file, for errors. */
  readonly where: string;
}

/** What the plugin may learn about the cluster when `provideClusterInfo` is set. */
export interface ExecClusterInfo {
  readonly server: string;
  readonly caPem?: string | undefined;
  readonly insecureSkipTlsVerify: boolean;
}

const EXEC_TIMEOUT_MS = 60_000;
const MAX_OUTPUT_BYTES = 1024 * 1024;
/** Renew this long before the credential's expirationTimestamp, so no request carries a token about to lapse. */
const EXPIRY_SKEW_MS = 30_000;

/**
 * Credentials from an exec plugin (`aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`, …), following the
 * client.authentication.k8s.io protocol: the plugin runs non-interactively with `KUBERNETES_EXEC_INFO` in its
 * environment and prints an ExecCredential whose status holds a token or a client certificate and key, and
 * optionally an expirationTimestamp. The result is cached until shortly before it expires, or until a request is
 * refused (401); concurrent callers share one run. The plugin's output is never logged.
 */
export function execCredentialSource(config: ExecConfig, cluster: ExecClusterInfo, env: NodeJS.ProcessEnv = process.env): ClusterAccess['credentials'] {
  let cached: { creds: Credentials; expiresAt: number } | undefined;
  let running: Promise<Credentials> | undefined;
  return (refresh = false) => {
    if (cached && !refresh && Date.now() < cached.expiresAt) return Promise.resolve(cached.creds);
    running ??= runPlugin(config, cluster, env)
      .then((result) => {
        cached = result;
        return result.creds;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
}

async function runPlugin(config: ExecConfig, cluster: ExecClusterInfo, env: NodeJS.ProcessEnv): Promise<{ creds: Credentials; expiresAt: number }> {
  const spec: Record<string, unknown> = { interactive: false };
  if (config.provideClusterInfo) {
    spec.cluster = {
      server: cluster.server,
      ...(cluster.caPem ? { 'certificate-authority-data': Buffer.from(cluster.caPem).toString('base64') } : {}),
      ...(cluster.insecureSkipTlsVerify ? { 'insecure-skip-tls-verify': true } : {}),
    };
  }
  const info = JSON.stringify({ apiVersion: config.apiVersion, kind: 'ExecCredential', spec });
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      config.command,
      [...config.args],
      { env: { ...env, ...config.env, KUBERNETES_EXEC_INFO: info }, timeout: EXEC_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', windowsHide: true },
      (err, out, errOut) => {
        if (err) {
          // Never err.message: it repeats the command line, and plugin arguments may hold secrets
          // (e.g. an OIDC client secret).
          const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals | null };
          const detail =
            e.code === 'ENOENT'
              ? `command not found: ${config.command}`
              : lastLine(errOut) || (e.killed ? `timed out after ${EXEC_TIMEOUT_MS / 1000} s` : e.signal ? `killed by ${e.signal}` : `exit code ${String(e.code)}`);
          reject(new Error(`exec credential plugin ${config.where} failed: ${detail}`));
        } else resolve(out);
      },
    );
  });
  let parsed: { apiVersion?: unknown; kind?: unknown; status?: Record<string, unknown> };
  try {
    parsed = JSON.parse(stdout) as typeof parsed;
  } catch {
    throw new Error(`exec credential plugin ${config.where} did not print an ExecCredential as JSON`);
  }
  if (parsed?.kind !== 'ExecCredential' || typeof parsed.status !== 'object' || parsed.status === null) {
    throw new Error(`exec credential plugin ${config.where} printed no ExecCredential status`);
  }
  if (parsed.apiVersion !== config.apiVersion) {
    throw new Error(`exec credential plugin ${config.where} answered with apiVersion ${JSON.stringify(parsed.apiVersion)}, expected ${config.apiVersion}`);
  }
  const s = parsed.status;
  const token = typeof s.token === 'string' && s.token ? s.token : undefined;
  const cert = typeof s.clientCertificateData === 'string' && s.clientCertificateData ? s.clientCertificateData : undefined;
  const key = typeof s.clientKeyData === 'string' && s.clientKeyData ? s.clientKeyData : undefined;
  if (!token && !(cert && key)) throw new Error(`exec credential plugin ${config.where} returned neither a token nor a client certificate and key`);
  const expiry = typeof s.expirationTimestamp === 'string' ? Date.parse(s.expirationTimestamp) : Number.NaN;
  return {
    creds: { authorization: token ? `Bearer ${token}` : undefined, clientCert: cert && key ? { certPem: cert, keyPem: key } : undefined },
    expiresAt: Number.isFinite(expiry) ? expiry - EXPIRY_SKEW_MS : Number.POSITIVE_INFINITY,
  };
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').slice(0, 300);
}
