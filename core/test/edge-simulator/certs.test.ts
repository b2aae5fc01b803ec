import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:tls';
import { createTestCa, issueCert } from '../../src/edge-simulator/certs.js';

test('a leaf issued by the test CA verifies against it, and not without it', async (t) => {
  const ca = createTestCa();
  const leaf = issueCert(ca, { dns: ['h2.cftunnel.com'], ips: ['127.0.0.1'] });
  const server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (_req, res) => res.end('ok'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const verified = connect({ host: '127.0.0.1', port, servername: 'h2.cftunnel.com', ca: ca.certPem });
  await once(verified, 'secureConnect');
  t.true(verified.authorized);
  verified.destroy();
  const unverified = connect({ host: '127.0.0.1', port, servername: 'h2.cftunnel.com' });
  const [err] = (await once(unverified, 'error')) as [Error];
  t.regex(err.message, /self.signed|unable to (get|verify)/i);
});

test('a process removes the CA folders it made when it exits', async (t) => {
  const certs = new URL('../../src/edge-simulator/certs.js', import.meta.url).href;
  const script = `import { createTestCa, issueCert } from ${JSON.stringify(certs)};
    const ca = createTestCa(); issueCert(ca, { dns: ['a.test'] }); console.log(ca.dir);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child, 'exit')) as [number];
  t.is(code, 0);
  const dir = out.trim();
  t.true(dir.includes('warren-ca-'));
  t.false(existsSync(dir));
});
