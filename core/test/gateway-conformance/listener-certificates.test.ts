/**
 * The certificates the edge simulator presents for the conformance run's HTTPS requests: found in the apiserver
 * (real CRDs from the suite's module) from the Gateways of Warren's class, by listener hostname and port.
 */
import { CoreV1Api, type KubernetesObject, KubernetesObjectApi } from '@kubernetes/client-node';
import test from 'ava';
import { createTestCa, issueCert, type TestCert } from '../../src/edge-simulator/certs.js';
import { useApiServer } from '../support/apiserver.js';
import { installCrds, listenerCertificates } from './support/gateway-objects.js';
import { standardCrds, suiteModule } from './support/suite-module.js';

const server = useApiServer(test);

test.serial('the best-matching HTTPS listener of the class on the port names the certificate: exact, then wildcard, then none', async (t) => {
  const kc = server().adminConfig();
  await installCrds(kc, standardCrds(suiteModule()));
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const ns = await server().createNamespace('certs');
  const other = await server().createNamespace('certs-other');
  const ca = createTestCa('listener certificates');
  const certs: Record<string, TestCert> = {};
  for (const name of ['exact', 'wildcard', 'hostless', 'elsewhere', 'other-class', 'port-8443']) {
    certs[name] = issueCert(ca, { dns: [`${name}.test`] });
    const secretNs = name === 'elsewhere' ? other : ns;
    await kc.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: secretNs,
      body: {
        metadata: { name },
        type: 'kubernetes.io/tls',
        data: { 'tls.crt': Buffer.from(certs[name].certPem).toString('base64'), 'tls.key': Buffer.from(certs[name].keyPem).toString('base64') },
      },
    });
  }
  const https = (name: string, secret: string, hostname?: string, port = 443, namespace?: string) => ({
    name,
    port,
    protocol: 'HTTPS',
    ...(hostname ? { hostname } : {}),
    tls: { certificateRefs: [{ kind: 'Secret', group: '', name: secret, ...(namespace ? { namespace } : {}) }] },
  });
  const gateway = (name: string, className: string, listeners: object[]) =>
    ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { namespace: ns, name }, spec: { gatewayClassName: className, listeners } }) as KubernetesObject;
  await objects.create(
    gateway('main', 'warren', [
      https('hostless', 'hostless'),
      https('wildcard', 'wildcard', '*.example.org'),
      https('exact', 'exact', 'www.example.org'),
      https('elsewhere', 'elsewhere', 'shared.example.net', 443, other),
      https('port-8443', 'port-8443', 'eight.example.org', 8443),
      { name: 'http', port: 80, protocol: 'HTTP', hostname: 'plain.example.org' },
    ]),
  );
  await objects.create(gateway('foreign', 'someone-else', [https('only', 'other-class', 'foreign.example.com')]));

  const lookup = listenerCertificates(kc, 'warren', 443);
  const pem = async (name: string | undefined) => (await lookup(name))?.certPem;
  t.is(await pem('www.example.org'), certs.exact!.certPem, 'an exact hostname wins over the wildcard and the hostless listener');
  t.is(await pem('WWW.Example.ORG'), certs.exact!.certPem, 'server names compare case-insensitively');
  t.is(await pem('api.example.org'), certs.wildcard!.certPem, 'a wildcard covers one more label');
  t.is(await pem('a.b.example.org'), certs.wildcard!.certPem, 'and deeper ones, as Gateway API wildcards do');
  t.is(await pem('example.org'), certs.hostless!.certPem, 'the wildcard does not cover its own suffix');
  t.is(await pem('shared.example.net'), certs.elsewhere!.certPem, 'a certificateRef names its Secret namespace');
  t.is(await pem('eight.example.org'), certs.wildcard!.certPem, 'a listener on another port is not this entrance');
  t.is(await pem('foreign.example.com'), certs.hostless!.certPem, 'Gateways of another class are not Warren');
  t.is(await pem(undefined), undefined, 'no server name, no certificate');
});
