/**
 * The matcher with request conditions and weights, on hand-made routes: precedence among alternatives on one path,
 * fall-through to shorter prefixes and broader hosts, header/query/method checks, RE2 patterns, weighted picks.
 * The builder's side (sources, conflicts) is covered by the route-source fixtures.
 */
import test from 'ava';
import { compileConditions } from '../../src/routes/conditions.js';
import { LayeredMap } from '../../src/routes/layered-map.js';
import { IndexedRouteTable, PathIndex, type PathEntry } from '../../src/routes/table.js';
import type { RequestConditions, RequestFacts, Route } from '../../src/routes/types.js';
import { seededRandom } from './support.js';

function route(id: string, extra: Partial<Route> = {}): Route {
  return {
    id,
    ingress: { kind: 'HTTPRoute', namespace: 'default', name: id, uid: id, creationTimestamp: '', generation: 1 },
    host: undefined,
    path: '/',
    pathType: 'Prefix',
    backend: { namespace: 'default', service: id, port: 80, endpoints: [{ key: '198.18.0.2:80', address: '198.18.0.2', port: 80, terminating: false }] },
    protocol: 'http',
    annotations: {},
    secretRefs: [],
    ...extra,
  };
}

const prefix = (key: string, r: Route): PathEntry => ({ kind: 'prefix', key, route: r });
const exact = (key: string, r: Route): PathEntry => ({ kind: 'exact', key, route: r });

function facts(method = 'GET', headers: string[] = [], query = ''): RequestFacts {
  return { method, headers, query };
}

test('alternatives on one path are tried in the given order; the first the request satisfies answers', (t) => {
  const both = route('both', { conditions: { method: 'POST', headers: [{ name: 'x-env', type: 'Exact', value: 'canary' }] } });
  const header = route('header', { conditions: { headers: [{ name: 'x-env', type: 'Exact', value: 'canary' }] } });
  const query = route('query', { conditions: { query: [{ name: 'v', type: 'Exact', value: '2' }] } });
  const plain = route('plain');
  const index = new PathIndex([prefix('/api', both), prefix('/api', header), prefix('/api', query), prefix('/api', plain)]);
  t.is(index.match('/api/x', facts('POST', ['x-env', 'canary']))?.id, 'both');
  t.is(index.match('/api/x', facts('GET', ['x-env', 'canary'], 'v=2'))?.id, 'header');
  t.is(index.match('/api/x', facts('GET', ['X-Env', 'canary'], 'v=2'))?.id, 'header', 'header names are case-insensitive');
  t.is(index.match('/api/x', facts('GET', ['x-env', 'Canary'], 'v=2'))?.id, 'query', 'header values are case-sensitive');
  t.is(index.match('/api/x', facts('post', ['x-env', 'canary']))?.id, 'header', 'the method is compared exactly');
  t.is(index.match('/api/x', facts('GET', [], 'V=2'))?.id, 'plain', 'query names are case-sensitive');
  t.is(index.match('/api/x', facts('GET', [], 'v=3&v=2'))?.id, 'plain', 'only the first value of a query parameter counts');
  t.is(index.match('/api/x', facts('GET', [], 'a=1&v=%32'))?.id, 'query', 'query values are decoded');
  t.is(index.match('/api/x')?.id, 'plain', 'without request facts no condition holds');
});

/** A table with one exact host `a.test`, optional rules without host, and a default route. */
function hostTable(hostIndex: PathIndex, hostless: PathIndex | undefined): IndexedRouteTable {
  return new IndexedRouteTable({
    generation: 1,
    exactHosts: LayeredMap.empty<string, PathIndex>().with(new Map([['a.test', hostIndex]])),
    wildcardHosts: LayeredMap.empty(),
    hostless,
    fallback: route('default'),
    routesByKey: LayeredMap.empty(),
    extraRoutes: [],
    diagnosticGroups: [],
    extraDiagnostics: [],
    owned: LayeredMap.empty(),
  });
}

test('when no alternative holds, shorter prefixes are tried, then broader hosts, then the default', (t) => {
  const gated = route('gated', { conditions: { headers: [{ name: 'x-team', type: 'Exact', value: 'a' }] } });
  const exactGated = route('exact-gated', { conditions: { method: 'DELETE' } });
  const root = route('root');
  const hostIndex = new PathIndex([prefix('/api', gated), exact('/api', exactGated), prefix('/api/v1', route('v1', { conditions: { method: 'PUT' } }))]);
  const hostless = new PathIndex([prefix('', root)]);
  const table = hostTable(hostIndex, hostless);
  t.is(table.match('a.test', '/api', facts('DELETE'))?.id, 'exact-gated');
  t.is(table.match('a.test', '/api', facts('GET', ['x-team', 'a']))?.id, 'gated', 'a failed Exact goes on to the prefixes');
  t.is(table.match('a.test', '/api/v1/x', facts('GET', ['x-team', 'a']))?.id, 'gated', 'a failed longer prefix goes on to the shorter one');
  t.is(table.match('a.test', '/api/v1/x', facts('PUT'))?.id, 'v1');
  t.is(table.match('A.test:443', '/api/v1/x', facts('GET'))?.id, 'root', 'nothing on the host holds: rules without host');
  t.is(table.match('a.test', '/api/v1/x')?.id, 'root');
  const noHostless = hostTable(hostIndex, undefined);
  t.is(noHostless.match('a.test', '/api', facts('GET'))?.id, 'default');
});

test('header values: repeated fields are combined, regular expressions match the whole value in RE2 syntax', (t) => {
  const pattern = route('pattern', { conditions: { headers: [{ name: 'x-version', type: 'RegularExpression', value: 'v[0-9]+' }] } });
  const combined = route('combined', { conditions: { headers: [{ name: 'accept', type: 'Exact', value: 'a, b' }] } });
  const index = new PathIndex([prefix('', pattern), prefix('', combined), prefix('', route('other'))]);
  t.is(index.match('/', facts('GET', ['x-version', 'v12']))?.id, 'pattern');
  t.is(index.match('/', facts('GET', ['x-version', 'v12-beta']))?.id, 'other', 'the pattern must match the whole value');
  t.is(index.match('/', facts('GET', ['x-version', 'xv1']))?.id, 'other');
  t.is(index.match('/', facts('GET', ['accept', 'a', 'accept', 'b']))?.id, 'combined');
});

test('patterns that are not RE2 or too long are refused with the reason; matching stays linear', (t) => {
  const check = (value: string, type: 'Exact' | 'RegularExpression' = 'RegularExpression'): ReturnType<typeof compileConditions> =>
    compileConditions({ headers: [{ name: 'x', type, value }] } satisfies RequestConditions);
  t.true(check('^(a|b)+$').ok);
  t.true(check('(a)\\1', 'Exact').ok, 'an Exact value is not a pattern');
  const backreference = check('(a)\\1');
  t.false(backreference.ok);
  t.regex(backreference.ok ? '' : backreference.message, /header "x": "\(a\)\\\\1" is not a valid RE2 regular expression/);
  t.false(check('(?=a)b').ok, 'lookahead is not RE2');
  t.false(check('[').ok);
  const long = check('a'.repeat(1025));
  t.regex(long.ok ? '' : long.message, /longer than 1024/);
  // A pattern that takes exponential time in a backtracking engine: RE2 answers at once.
  const hostile = route('hostile', { conditions: { headers: [{ name: 'x', type: 'RegularExpression', value: '(a|a)*(a|a)*c' }] } });
  const index = new PathIndex([prefix('', hostile)]);
  const started = performance.now();
  t.is(index.match('/', facts('GET', ['x', `${'a'.repeat(4000)}b`])), undefined);
  t.true(performance.now() - started < 1000, 'matching a 4000-character value took under a second');
  // Conditions that do not compile never hold (the builder reports and drops them before they get here).
  const broken = new PathIndex([prefix('', route('broken', { conditions: { headers: [{ name: 'x', type: 'RegularExpression', value: '(' }] } })), prefix('', route('ok'))]);
  t.is(broken.match('/', facts('GET', ['x', '(']))?.id, 'ok');
});

test('a weighted group is one alternative, picked in proportion to the weights; weight 0 is never picked', (t) => {
  const group = 'HTTPRoute:default/split#r0';
  const conditions: RequestConditions = { headers: [{ name: 'x-split', type: 'Exact', value: 'yes' }] };
  const a = route('a', { weight: { group, weight: 1 }, conditions });
  const b = route('b', { weight: { group, weight: 3 }, conditions });
  const never = route('never', { weight: { group, weight: 0 }, conditions });
  // A route of another group between the members does not split them.
  const between = route('between', { conditions: { headers: [{ name: 'x-split', type: 'Exact', value: 'no' }] } });
  const index = new PathIndex([prefix('', a), prefix('', between), prefix('', never), prefix('', b), prefix('', route('rest'))], seededRandom(42));
  const counts = new Map<string, number>();
  const draws = 4000;
  for (let i = 0; i < draws; i++) {
    const id = index.match('/', facts('GET', ['x-split', 'yes']))!.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  t.deepEqual([...counts.keys()].sort(), ['a', 'b']);
  const shareOfB = counts.get('b')! / draws;
  // Expected 0.75; four standard deviations at 4000 draws are about ±0.027.
  t.true(shareOfB > 0.72 && shareOfB < 0.78, `share of b: ${shareOfB}`);
  t.is(index.match('/', facts('GET', ['x-split', 'no']))?.id, 'between');
  t.is(index.match('/', facts('GET'))?.id, 'rest');
});

test('a weighted group whose weights are all 0 answers as unavailable (500), without endpoints', (t) => {
  const group = 'HTTPRoute:default/zero#r1';
  const index = new PathIndex([
    prefix('/z', route('z0', { weight: { group, weight: 0 } })),
    prefix('/z', route('z1', { weight: { group, weight: 0 } })),
    prefix('', route('root')),
  ]);
  const hit = index.match('/z/a', facts());
  t.is(hit?.id, group);
  t.is(hit?.unresolved?.status, 500);
  t.is(hit?.unresolved?.reason, 'NoWeight');
  t.deepEqual(hit?.backend.endpoints, []);
  t.is(index.match('/z/a', facts()), hit, 'the same route object every time');
  t.true(Object.isFrozen(hit));
});
