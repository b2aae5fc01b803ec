import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { CLOUDFLARE_EDGE_ROOTS } from '../../src/tunnel/cloudflare-roots.js';
import { edgeTrustRoots } from '../../src/tunnel/edge-tls.js';

test('the three Cloudflare CAs match the SHA-256 fingerprints of the reference and are CAs', (t) => {
  t.is(CLOUDFLARE_EDGE_ROOTS.length, 3);
  for (const root of CLOUDFLARE_EDGE_ROOTS) {
    const cert = new X509Certificate(root.pem);
    t.is(cert.fingerprint256, root.sha256, root.name);
    t.true(cert.ca, root.name);
    t.true(cert.subject.includes(root.name.split(',')[0]!.split('=')[1]!), root.name);
  }
});

test('default roots include the system roots and the Cloudflare CAs; a custom CA replaces them all', (t) => {
  const roots = edgeTrustRoots();
  t.true(roots.length > 3);
  for (const root of CLOUDFLARE_EDGE_ROOTS)
    t.true(
      roots.some((r) => r.trim() === root.pem.trim()),
      root.name,
    );
  t.deepEqual(edgeTrustRoots('custom-pem'), ['custom-pem']);
});
