import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';

/** One unusable key of a TLS Secret: which key, and what is wrong with it (never its content). */
export interface MaterialProblem {
  readonly key: 'ca.crt' | 'tls.crt' | 'tls.key';
  readonly problem: string;
}

/** More certificates than this in one key is not a CA bundle (Mozilla's whole root store has about 150). */
export const MAX_CERTIFICATES = 1_000;

const BEGIN = '-----BEGIN CERTIFICATE-----';
const END = '-----END CERTIFICATE-----';

/**
 * Checks the PEM material Warren hands to the TLS stack, so an unusable Secret is reported once, by name, key and
 * problem, instead of failing every connection: `ca.crt` and `tls.crt` must be PEM certificates that parse and
 * have not expired, `tls.key` a PEM private key (unencrypted) that matches the first certificate of `tls.crt`.
 * Only the keys given are checked. Messages never quote the material.
 */
export function checkMaterial(
  material: { readonly ca?: Buffer | undefined; readonly cert?: Buffer | undefined; readonly key?: Buffer | undefined },
  now = Date.now(),
): MaterialProblem[] {
  const problems: MaterialProblem[] = [];
  if (material.ca) {
    const problem = certificateProblem(material.ca, now);
    if (problem) problems.push({ key: 'ca.crt', problem });
  }
  let leaf: X509Certificate | undefined;
  if (material.cert) {
    const problem = certificateProblem(material.cert, now);
    if (problem) problems.push({ key: 'tls.crt', problem });
    else leaf = new X509Certificate(firstBlock(material.cert)!);
  }
  if (material.key) {
    let key: KeyObject | undefined;
    try {
      key = createPrivateKey({ key: material.key, format: 'pem' });
    } catch (err) {
      problems.push({ key: 'tls.key', problem: `is not a usable PEM private key (${reason(err)})` });
    }
    if (key && leaf && !leaf.checkPrivateKey(key)) problems.push({ key: 'tls.key', problem: 'does not belong to the certificate in tls.crt' });
  }
  return problems;
}

function certificateProblem(pem: Buffer, now: number): string | undefined {
  const blocks = certificateBlocks(pem, MAX_CERTIFICATES + 1);
  if (blocks.length === 0) return 'is not PEM: no "-----BEGIN CERTIFICATE-----" block';
  if (blocks.length > MAX_CERTIFICATES) return `holds more than ${MAX_CERTIFICATES} certificates`;
  for (let i = 0; i < blocks.length; i++) {
    const which = blocks.length === 1 ? 'the certificate' : `certificate ${i + 1} of ${blocks.length}`;
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(blocks[i]!);
    } catch (err) {
      return `${which} does not parse (${reason(err)})`;
    }
    if (Date.parse(cert.validTo) < now) return `${which} (${subject(cert)}) expired on ${new Date(cert.validTo).toISOString()}`;
  }
  return undefined;
}

function firstBlock(pem: Buffer): string | undefined {
  return certificateBlocks(pem, 1)[0];
}

/**
 * The first `limit` `BEGIN … END CERTIFICATE` blocks, in one pass over the text: a Secret's content is the
 * tenant's, and a backtracking pattern over up to 1 MiB of unterminated markers would hold the event loop (and
 * so every route of every tenant) for seconds.
 */
function certificateBlocks(pem: Buffer, limit: number): string[] {
  const text = pem.toString('latin1');
  const blocks: string[] = [];
  let from = 0;
  while (blocks.length < limit) {
    const begin = text.indexOf(BEGIN, from);
    if (begin < 0) break;
    const end = text.indexOf(END, begin + BEGIN.length);
    if (end < 0) break;
    from = end + END.length;
    blocks.push(text.slice(begin, from));
  }
  return blocks;
}

function subject(cert: X509Certificate): string {
  return cert.subject.split('\n').find((l) => l.startsWith('CN=')) ?? 'no CN';
}

/** OpenSSL's reason without the stack or any input. */
function reason(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message.split('\n')[0]!.slice(0, 120) : 'unknown error';
  return typeof e.code === 'string' ? `${e.code}: ${message}` : message;
}
