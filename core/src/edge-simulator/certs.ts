import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Test certificates made with the openssl CLI: a CA and leaves it signs. For tests and local mode only.
 * Keys are P-256 ECDSA. Everything is written to a fresh temp folder whose paths are returned too.
 */
export interface TestCa {
  readonly dir: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface TestCert {
  readonly certPem: string;
  readonly keyPem: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface IssueOptions {
  /** DNS names for subjectAltName. */
  dns?: readonly string[];
  /** IP addresses for subjectAltName. */
  ips?: readonly string[];
  /** URIs for subjectAltName (e.g. SPIFFE ids). */
  uris?: readonly string[];
  /** Common name; defaults to the first DNS name or "warren-test". */
  commonName?: string;
  /** Issue a client certificate (extendedKeyUsage clientAuth) instead of a server one. */
  client?: boolean;
  /** Validity in days (default 30). */
  days?: number;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Folders this process made; removed when it exits, so no run leaves key material behind in the temp folder. */
const madeDirs = new Set<string>();

function removeMadeDirs(): void {
  for (const dir of madeDirs) rmSync(dir, { recursive: true, force: true });
  madeDirs.clear();
}

function makeDir(): string {
  if (madeDirs.size === 0) process.once('exit', removeMadeDirs);
  const dir = mkdtempSync(join(tmpdir(), 'warren-ca-'));
  madeDirs.add(dir);
  return dir;
}

export function createTestCa(commonName = 'Warren Test CA'): TestCa {
  const dir = makeDir();
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-sha256',
      '-days',
      '30',
      '-subj',
      `/CN=${commonName}`,
      '-out',
      'ca.crt',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return {
    dir,
    certFile: join(dir, 'ca.crt'),
    keyFile: join(dir, 'ca.key'),
    certPem: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    keyPem: readFileSync(join(dir, 'ca.key'), 'utf8'),
  };
}

let serial = 0;

export function issueCert(ca: TestCa, options: IssueOptions = {}): TestCert {
  const name = `leaf-${process.pid}-${++serial}`;
  const dir = ca.dir;
  const san = [...(options.dns ?? []).map((d) => `DNS:${d}`), ...(options.ips ?? []).map((i) => `IP:${i}`), ...(options.uris ?? []).map((u) => `URI:${u}`)];
  const cn = options.commonName ?? options.dns?.[0] ?? 'warren-test';
  const ext = [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    `extendedKeyUsage=${options.client ? 'clientAuth' : 'serverAuth'}`,
    ...(san.length ? [`subjectAltName=${san.join(',')}`] : []),
  ].join('\n');
  writeFileSync(join(dir, `${name}.ext`), `${ext}\n`);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`], dir);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      String(options.days ?? 30),
      '-sha256',
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    ],
    dir,
  );
  return {
    certFile: join(dir, `${name}.crt`),
    keyFile: join(dir, `${name}.key`),
    certPem: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    keyPem: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}
