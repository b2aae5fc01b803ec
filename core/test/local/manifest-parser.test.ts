import test from 'ava';
import { parseManifestText } from '../../src/local/manifest-parser.js';

const service = (name: string, extra = '') => `apiVersion: v1
kind: Service
metadata:
  name: ${name}
${extra}spec:
  ports:
    - name: http
      port: 80
`;

test('multi-document YAML yields every object; a missing namespace means default', (t) => {
  const text = `${service('web')}---\n${service('api', '  namespace: shop\n')}---\n`;
  const { objects, problems } = parseManifestText(text, 'svc.yaml');
  t.deepEqual(problems, []);
  t.deepEqual(
    objects.map((o) => [o.kind, o.namespace, o.name, o.document]),
    [
      ['Service', 'default', 'web', 1],
      ['Service', 'shop', 'api', 2],
    ],
  );
  t.is((objects[0]!.object.metadata as { namespace: string }).namespace, 'default');
});

test('JSON files and v1 Lists are read', (t) => {
  const list = JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
      { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'demo' }, spec: { ports: [{ port: 8080 }] } },
    ],
  });
  const { objects, problems } = parseManifestText(list, 'all.json');
  t.deepEqual(problems, []);
  t.deepEqual(
    objects.map((o) => `${o.kind} ${o.namespace ?? '-'} ${o.name}`),
    ['IngressClass - cloudflare-tunnel', 'Service demo web'],
  );
});

test('a YAML syntax error names the file, the document and the line, and other documents still parse', (t) => {
  const text = `${service('good')}---\napiVersion: v1\nkind: Service\nmetadata: {name: bad\n`;
  const { objects, problems } = parseManifestText(text, 'broken.yaml');
  t.deepEqual(
    objects.map((o) => o.name),
    ['good'],
  );
  t.is(problems.length, 1);
  t.is(problems[0]!.severity, 'error');
  t.is(problems[0]!.document, 2);
  t.regex(problems[0]!.message, /^broken\.yaml, document 2 \(line \d+\): invalid YAML/);
});

test('a wrongly typed field is an error naming the object and the field', (t) => {
  const text = service('web').replace('port: 80', 'port: http');
  const { objects, problems } = parseManifestText(text, 'svc.yaml');
  t.deepEqual(objects, []);
  t.is(problems.length, 1);
  t.is(problems[0]!.object, 'Service default/web');
  t.regex(problems[0]!.message, /^svc\.yaml, document 1 \(Service default\/web\): spec\.ports\[0\]\.port: /);
});

test('names, annotation values and label values are checked like the API server checks them', (t) => {
  const badName = parseManifestText(service('Web_1'), 'a.yaml');
  t.regex(badName.problems[0]!.message, /metadata\.name: .*DNS-1035/);
  const numberAnnotation = parseManifestText(
    `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: x\n  annotations:\n    warren.dev/connect-timeout: 5\n`,
    'b.yaml',
  );
  t.regex(numberAnnotation.problems[0]!.message, /metadata\.annotations\.warren\.dev\/connect-timeout: annotation values must be strings/);
});

test('a known kind with another apiVersion is an error; unknown kinds are ignored, not errors', (t) => {
  const text = `apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata:\n  name: old\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n`;
  const { objects, problems } = parseManifestText(text, 'mixed.yaml');
  t.deepEqual(objects, []);
  t.deepEqual(
    problems.map((p) => p.severity),
    ['error', 'ignored'],
  );
  t.regex(problems[0]!.message, /apiVersion must be networking\.k8s\.io\/v1 for Ingress, got extensions\/v1beta1/);
  t.regex(problems[1]!.message, /kind Deployment is ignored/);
});

test('documents that are not objects are errors; empty documents are skipped', (t) => {
  const { objects, problems } = parseManifestText('---\n- a\n- b\n---\n---\n42\n', 'junk.yaml');
  t.deepEqual(objects, []);
  t.deepEqual(
    problems.map((p) => [p.document, p.severity]),
    [
      [1, 'error'],
      [3, 'error'],
    ],
  );
});

test('duplicate mapping keys are rejected (the API server would reject the JSON)', (t) => {
  const { problems } = parseManifestText(`${service('web')}metadata:\n  name: other\n`, 'dup.yaml');
  t.is(problems.length, 1);
  t.regex(problems[0]!.message, /dup\.yaml, document 1.*invalid YAML/);
});

test('Secret stringData is folded into base64 data; bad base64 in data is an error', (t) => {
  const ok = parseManifestText('apiVersion: v1\nkind: Secret\nmetadata:\n  name: ca\ndata:\n  a: aGVsbG8=\nstringData:\n  b: world\n', 's.yaml');
  t.deepEqual(ok.problems, []);
  t.deepEqual(ok.objects[0]!.object.data, { a: 'aGVsbG8=', b: Buffer.from('world').toString('base64') });
  t.false('stringData' in ok.objects[0]!.object);
  const bad = parseManifestText('apiVersion: v1\nkind: Secret\nmetadata:\n  name: ca\ndata:\n  a: "not base64!"\n', 's.yaml');
  t.regex(bad.problems[0]!.message, /data\.a: base64 text/);
});

test('EndpointSlice addresses must match the addressType; a slice without service label gets a warning', (t) => {
  const slice = (address: string, labels = '  labels:\n    kubernetes.io/service-name: web\n') =>
    `apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: web-1\n${labels}addressType: IPv4\nendpoints:\n  - addresses: ["${address}"]\nports:\n  - port: 3000\n`;
  t.deepEqual(parseManifestText(slice('127.0.0.1'), 'e.yaml').problems, []);
  const v6 = parseManifestText(slice('::1'), 'e.yaml');
  t.regex(v6.problems[0]!.message, /endpoints\[0\]\.addresses\[0\]: an IPv4 address \(got "::1"\)/);
  const unlabelled = parseManifestText(slice('127.0.0.1', ''), 'e.yaml');
  t.is(unlabelled.objects.length, 1);
  t.is(unlabelled.problems[0]!.severity, 'warning');
  t.regex(unlabelled.problems[0]!.message, /belongs to no Service/);
});

test('garbage never throws', (t) => {
  for (const text of ['\u0000\u0001', '{{{{', 'a: [', '*alias', '!!binary x', 'kind: [1]\napiVersion: {}', 'x'.repeat(10_000)]) {
    let objects: unknown[] | undefined;
    t.notThrows(() => {
      objects = [...parseManifestText(text, 'g.yaml').objects];
    });
    t.deepEqual(objects, []);
  }
});

test('Gateway API objects are read; a malformed one is rejected alone, naming the object and the field', (t) => {
  const text = [
    'apiVersion: gateway.networking.k8s.io/v1',
    'kind: GatewayClass',
    'metadata: {name: cloudflare-tunnel, namespace: ignored}',
    'spec: {controllerName: warren.dev/gateway-controller}',
    '---',
    'apiVersion: gateway.networking.k8s.io/v1',
    'kind: Gateway',
    'metadata: {name: edge}',
    'spec: {gatewayClassName: cloudflare-tunnel, listeners: [{name: web, port: "80", protocol: HTTP}]}',
    '---',
    'apiVersion: gateway.networking.k8s.io/v1beta1',
    'kind: HTTPRoute',
    'metadata: {name: shop, namespace: apps}',
    'spec: {parentRefs: [{name: edge}], rules: [{backendRefs: [{name: web, port: 80, weight: -1}]}]}',
    '---',
    'apiVersion: gateway.networking.k8s.io/v1alpha2',
    'kind: GRPCRoute',
    'metadata: {name: old}',
    '---',
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata: {name: ca, namespace: apps}',
    'data: {ca.crt: "-----BEGIN CERTIFICATE-----"}',
  ].join('\n');
  const { objects, problems } = parseManifestText(text, 'gw.yaml');
  t.deepEqual(
    objects.map((o) => `${o.kind} ${o.namespace ?? '-'} ${o.name}`),
    ['GatewayClass - cloudflare-tunnel', 'ConfigMap apps ca'],
  );
  t.deepEqual(
    problems.map((p) => [p.severity, p.object]),
    [
      ['rejected', 'Gateway default/edge'],
      ['rejected', 'HTTPRoute apps/shop'],
      ['rejected', 'GRPCRoute default/old'],
    ],
  );
  t.regex(problems[0]!.message, /^gw\.yaml, document 2 \(Gateway default\/edge\): spec\.listeners\[0\]\.port: .*left out/);
  t.regex(problems[1]!.message, /spec\.rules\[0\]\.backendRefs\[0\]\.weight: /);
  t.regex(problems[2]!.message, /apiVersion must be gateway\.networking\.k8s\.io\/v1 for GRPCRoute, got gateway\.networking\.k8s\.io\/v1alpha2/);
});
