import { checkServerIdentity, type PeerCertificate } from 'node:tls';

/**
 * The identity check of an upstream certificate that must carry one of `names` (`DNS:<name>` or `URI:<uri>`)
 * instead of the SNI name: a DNS name matches as TLS clients match host names (wildcards included), a URI only
 * exactly. Chain verification is unchanged; this replaces only the name check.
 */
export function subjectAltNameCheck(names: readonly string[]): (host: string, cert: PeerCertificate) => Error | undefined {
  const dns = names.filter((n) => n.startsWith('DNS:')).map((n) => n.slice(4));
  const uris = new Set(names.filter((n) => n.startsWith('URI:')));
  return (_host, cert) => {
    if (dns.some((name) => checkServerIdentity(name, cert) === undefined)) return undefined;
    const present = (cert.subjectaltname ?? '').split(', ').filter((entry) => entry.startsWith('URI:'));
    if (present.some((entry) => uris.has(entry))) return undefined;
    return Object.assign(new Error(`the upstream certificate carries none of the subject alternative names ${names.join(', ')}`), {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
  };
}
