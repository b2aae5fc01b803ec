/**
 * The chart's ValidatingAdmissionPolicy on the real kube-apiserver: rendered by the real helm, created on the API
 * server, then Ingresses are applied (server-side dry run unless they must exist). A bad Ingress of Warren's class is
 * refused with a message naming the key; a good one is accepted; an Ingress of another class is untouched; and no
 * value the controller accepts is ever refused (every derived check is tried against the controller's own parser).
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { ANNOTATION_PREFIX } from '../../src/plugin-api/manifest.js';
import { CORE_ANNOTATIONS } from '../../src/routes/core-annotations.js';
import { RoutingPlugins } from '../../src/routes/plugins.js';
import { loadBuiltinPluginModules } from '../../src/docgen/plugins.js';
import { useApiServer, type TestApiServer } from '../support/apiserver.js';
import { render, type K8sObject } from './helm.js';

const server = useApiServer(test);
const VALUES = { cloudflare: { tunnelToken: 'test-token' } };

interface Answer {
  readonly status: number;
  readonly message: string;
}

let agent: Agent | undefined;
async function call(s: TestApiServer, method: 'POST' | 'PUT' | 'GET', path: string, body?: unknown): Promise<Answer & { body: Record<string, unknown>; warnings: string[] }> {
  const token = s.adminConfig().getCurrentUser()?.token;
  agent ??= new Agent({ connect: { ca: s.caPem } });
  const res = await request(`${s.url}${path}`, {
    method,
    dispatcher: agent,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const parsed = (await res.body.json()) as Record<string, unknown>;
  const warning = res.headers.warning;
  const warnings = warning === undefined ? [] : Array.isArray(warning) ? warning : [warning];
  return { status: res.statusCode, message: String(parsed.message ?? ''), body: parsed, warnings };
}

function ingress(namespace: string, name: string, annotations: Record<string, string>, className: string | null = 'cloudflare-tunnel'): K8sObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name, namespace, annotations },
    spec: {
      ...(className ? { ingressClassName: className } : {}),
      rules: [{ host: `${name}.example`, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }],
    },
  };
}

const ingressesPath = (namespace: string) => `/apis/networking.k8s.io/v1/namespaces/${namespace}/ingresses`;

/** Creates the Ingress as a server-side dry run: full admission, nothing stored. */
const tryCreate = (namespace: string, object: K8sObject) => call(server(), 'POST', `${ingressesPath(namespace)}?dryRun=All`, object);

let namespace = '';
const createWarnings: string[] = [];
test.before(async () => {
  const s = server();
  const rendered = await render(VALUES);
  namespace = await s.createNamespace('vap');
  // An Ingress admitted before the policy existed (it carries a bad value and an unknown key). Created before the
  // policy, not merely before it loads: the API server may load a new policy at once.
  const old = await call(s, 'POST', ingressesPath(namespace), ingress(namespace, 'admitted-before', { 'warren.dev/connect-timeout': 'soon', 'warren.dev/typo': 'x' }));
  if (old.status !== 201) throw new Error(`creating the earlier Ingress failed: ${old.status} ${old.message}`);
  for (const kind of ['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'] as const) {
    const object = rendered.get(kind);
    const plural = kind === 'ValidatingAdmissionPolicy' ? 'validatingadmissionpolicies' : 'validatingadmissionpolicybindings';
    const created = await call(s, 'POST', `/apis/admissionregistration.k8s.io/v1/${plural}`, object);
    if (created.status !== 201) throw new Error(`creating the ${kind} failed: ${created.status} ${created.message}`);
    createWarnings.push(...created.warnings);
  }
  // The API server loads new policies asynchronously: wait (bounded) until the policy refuses a bad Ingress.
  const deadline = Date.now() + 30_000;
  for (let i = 0; i < 300 && Date.now() < deadline; i++) {
    if ((await tryCreate(namespace, ingress(namespace, 'probe', { 'warren.dev/connect-timeout': 'soon' }))).status === 422) return;
    await sleep(100);
  }
  throw new Error('the ValidatingAdmissionPolicy never took effect');
});

test.serial('admissionPolicy.enabled=false renders neither object; extraAnnotationKeys and plugin toggles shape the known keys', async (t) => {
  const off = await render({ ...VALUES, admissionPolicy: { enabled: false } });
  t.is(off.find('ValidatingAdmissionPolicy'), undefined);
  t.is(off.find('ValidatingAdmissionPolicyBinding'), undefined);
  const on = await render({ ...VALUES, admissionPolicy: { extraAnnotationKeys: ['acme-limit'] }, plugins: { grpc: { enabled: false }, tls: { enabled: false } } });
  const known = (on.get('ValidatingAdmissionPolicy') as unknown as { spec: { variables: Array<{ name: string; expression: string }> } }).spec.variables.find(
    (v) => v.name === 'known',
  )!.expression;
  t.regex(known, /'warren\.dev\/acme-limit'/);
  t.regex(known, /'warren\.dev\/sse-heartbeat'/);
  t.regex(known, /'warren\.dev\/connect-timeout'/);
  t.notRegex(known, /proxy-ssl-secret|grpc-default-timeout|dns-managed/);
});

test.serial('the API server accepted the policy without warnings', (t) => {
  t.deepEqual(createWarnings, []);
});

test.serial('a bad value is refused with a message naming the key', async (t) => {
  const answer = await tryCreate(namespace, ingress(namespace, 'bad-value', { 'warren.dev/connect-timeout': '5 seconds' }));
  t.is(answer.status, 422);
  t.regex(answer.message, /ValidatingAdmissionPolicy 'warren-annotations'/);
  t.regex(answer.message, /annotation warren\.dev\/connect-timeout has an invalid value; expected a value like "5s"/);
  const protocol = await tryCreate(namespace, ingress(namespace, 'bad-protocol', { 'warren.dev/backend-protocol': 'GRPX' }));
  t.is(protocol.status, 422);
  t.regex(protocol.message, /warren\.dev\/backend-protocol/);
});

test.serial("an unknown key under the prefix is refused, naming it; a disabled plugin's key counts as unknown", async (t) => {
  const unknown = await tryCreate(namespace, ingress(namespace, 'typo', { 'warren.dev/conect-timeout': '5s', 'example.com/other': 'anything' }));
  t.is(unknown.status, 422);
  t.regex(unknown.message, /annotation warren\.dev\/conect-timeout is unknown to Warren/);
  // The DNS plugin is off by default.
  const disabled = await tryCreate(namespace, ingress(namespace, 'dns', { 'warren.dev/dns-managed': 'false' }));
  t.is(disabled.status, 422);
  t.regex(disabled.message, /warren\.dev\/dns-managed is unknown/);
});

test.serial('a good Ingress with every enabled annotation is accepted', async (t) => {
  const plugins = (await loadBuiltinPluginModules()).filter((m) => m.manifest.enabledByDefault);
  const annotations: Record<string, string> = {};
  for (const spec of [...CORE_ANNOTATIONS, ...plugins.flatMap((m) => m.manifest.annotations ?? [])]) annotations[ANNOTATION_PREFIX + spec.key] = spec.example;
  t.true(Object.keys(annotations).length >= 10);
  const answer = await tryCreate(namespace, ingress(namespace, 'good', { ...annotations, 'example.com/other': 'x' }));
  t.is(answer.status, 201, answer.message);
});

test.serial("Ingresses of another class are untouched; the legacy class annotation is Warren's class too", async (t) => {
  const bad = { 'warren.dev/connect-timeout': 'soon', 'warren.dev/nonsense': 'x' };
  t.is((await tryCreate(namespace, ingress(namespace, 'other-class', bad, 'nginx'))).status, 201);
  const classless = await tryCreate(namespace, ingress(namespace, 'no-class', bad, null));
  t.is(classless.status, 201, `class-less Ingresses are not Warren's by default: ${classless.message}`);
  const legacy = await tryCreate(namespace, ingress(namespace, 'legacy', { ...bad, 'kubernetes.io/ingress.class': 'cloudflare-tunnel' }, null));
  t.is(legacy.status, 422);
  t.regex(legacy.message, /warren\.dev\/nonsense is unknown/);
});

test.serial('updates: a new bad value is refused; other changes to an Ingress admitted before the policy go through', async (t) => {
  const path = `${ingressesPath(namespace)}/admitted-before`;
  const current = (await call(server(), 'GET', path)).body as unknown as K8sObject;
  const withFinalizer = { ...current, metadata: { ...current.metadata, finalizers: ['warren.dev/cleanup'], labels: { team: 'a' } } };
  const updated = await call(server(), 'PUT', path, withFinalizer);
  t.is(updated.status, 200, updated.message);
  const again = (await call(server(), 'GET', path)).body as unknown as K8sObject;
  const changed = { ...again, metadata: { ...again.metadata, annotations: { ...again.metadata.annotations, 'warren.dev/idle-timeout': 'forever' } } };
  const refused = await call(server(), 'PUT', path, changed);
  t.is(refused.status, 422);
  // Once its warren.dev/ annotations change, the whole set is checked again: the first problem is named.
  t.regex(refused.message, /annotation warren\.dev\/(typo|idle-timeout|connect-timeout)/);
  // Let the namespace go: drop the finalizer again (allowed, annotations unchanged).
  const last = (await call(server(), 'GET', path)).body as unknown as K8sObject;
  t.is((await call(server(), 'PUT', path, { ...last, metadata: { ...last.metadata, finalizers: [] } })).status, 200);
});

test.serial("no value the controller accepts is refused (each derived check against the controller's parser)", async (t) => {
  const modules = await loadBuiltinPluginModules();
  // The controller as the chart runs it: the plugins enabled by default, the others known.
  const parsers = new RoutingPlugins(
    modules.filter((m) => m.manifest.enabledByDefault).map((m) => m.manifest),
    modules.map((m) => m.manifest),
  );
  const enabled = new Set(modules.filter((m) => m.manifest.enabledByDefault).flatMap((m) => (m.manifest.annotations ?? []).map((a) => a.key)));
  const specs = [...CORE_ANNOTATIONS, ...modules.flatMap((m) => m.manifest.annotations ?? [])].filter((s) => CORE_ANNOTATIONS.includes(s) || enabled.has(s.key));
  let accepted = 0;
  let refused = 0;
  let n = 0;
  for (const spec of specs) {
    const e = spec.example;
    const values = [
      e,
      ` ${e} `,
      e.toUpperCase(),
      e.toLowerCase(),
      `${e}x`,
      '',
      '0',
      '1',
      '1000',
      '99999',
      '5 seconds',
      '1.5m',
      '250ms',
      'on',
      'OFF',
      'grpc',
      ' Round-Robin',
      'app.internal:8080',
      '[::1]:80',
      'a_b',
      'x'.repeat(300),
    ];
    for (const value of [...new Set(values)]) {
      // What the controller parses with: the spec as RoutingPlugins hands it out (backend-protocol narrowed to the manifests' protocols).
      const controller = RoutingPlugins.parse(parsers.annotation(spec.key)?.spec ?? spec, value).ok;
      const answer = await tryCreate(namespace, ingress(namespace, `corpus-${++n}`, { [ANNOTATION_PREFIX + spec.key]: value }));
      if (controller) t.is(answer.status, 201, `${spec.key}=${JSON.stringify(value)} is valid for the controller but refused: ${answer.message}`);
      if (answer.status === 201) accepted++;
      else {
        refused++;
        t.false(controller);
        t.regex(answer.message, new RegExp(`warren\\.dev/${spec.key}`));
      }
    }
  }
  t.true(accepted > 20 && refused > 20, `accepted ${accepted}, refused ${refused}`);
});
