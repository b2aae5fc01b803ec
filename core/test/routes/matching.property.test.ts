/**
 * Property tests: the route table's host and path matching agrees with a deliberately simple reference that
 * scans every rule, and nothing in the builder or the matcher throws for arbitrary input.
 */
import test from 'ava';
import fc from 'fast-check';
import type { V1Ingress } from '@kubernetes/client-node';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { checkRuleHost, requestHost } from '../../src/routes/hosts.js';
import { canonicalRequestTarget, checkRulePath } from '../../src/routes/paths.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import { testRoutingConfig } from './support.js';

type RuleHost = { kind: 'exact' | 'wildcard'; name: string } | { kind: 'none' };
interface Rule {
  host: RuleHost;
  path: string;
  type: 'Exact' | 'Prefix' | 'ImplementationSpecific';
  /** Creation time in seconds; equal times fall back to name order. */
  time: number;
}

const label = fc.constantFrom('a', 'b', 'ab', 'x1', 'zz');
const domain = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join('.'));
const ruleHost: fc.Arbitrary<RuleHost> = fc.oneof(
  domain.map((name) => ({ kind: 'exact' as const, name })),
  domain.map((name) => ({ kind: 'wildcard' as const, name })),
  fc.constant({ kind: 'none' as const }),
);
const segment = fc.constantFrom('a', 'b', 'ab', 'A', 'c-d', '%41');
const rulePath = fc.tuple(fc.array(segment, { maxLength: 3 }), fc.boolean()).map(([segs, slash]) => (segs.length === 0 ? '/' : `/${segs.join('/')}${slash ? '/' : ''}`));
const rule: fc.Arbitrary<Rule> = fc.record({
  host: ruleHost,
  path: rulePath,
  type: fc.constantFrom('Exact', 'Prefix', 'ImplementationSpecific'),
  time: fc.integer({ min: 0, max: 3 }),
});
const requestSegment = fc.constantFrom('a', 'b', 'ab', 'A', 'c-d', '%41', '', '.', 'abc', '%2F');
const request = fc.record({
  host: fc.tuple(fc.array(label, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.constantFrom('', ':8443', '.')).map(([labels, upper, suffix]) => {
    const h = labels.join('.');
    return (upper ? h.toUpperCase() : h) + suffix;
  }),
  path: fc.tuple(fc.array(requestSegment, { maxLength: 4 }), fc.constantFrom('', '/', '?q=/a', '/?x')).map(([segs, tail]) => `/${segs.join('/')}${tail}`),
});

// ---- the reference: scan every rule, score, pick the best -------------------------------------------------

function refHostRank(rule: RuleHost, authority: string): number {
  let h = authority.toLowerCase();
  if (h.includes(':')) h = h.slice(0, h.indexOf(':'));
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (rule.kind === 'none') return 1;
  if (rule.kind === 'exact') return rule.name === h ? 3 : 0;
  const labels = h.split('.');
  return labels.length >= 2 && labels[0] !== '' && labels.slice(1).join('.') === rule.name ? 2 : 0;
}

/**
 * The request path the pipeline matches on, for this alphabet: refused with `%2F`; `%41` decoded; runs of `/`
 * merged (a trailing one kept); `.` elements dropped. Undefined when refused.
 */
function refCanonical(rawPath: string): string | undefined {
  const path = rawPath.split('?')[0]!;
  if (path.includes('%2F')) return undefined;
  const segs = path.replaceAll('%41', 'A').split('/').slice(1);
  const out: string[] = [];
  for (const [i, s] of segs.entries()) {
    const last = i === segs.length - 1;
    if (s === '.' || (s === '' && !last)) {
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

/** The path the pipeline hands to `match` for a request it accepts. */
function matchedPath(rawPath: string): string | undefined {
  const c = canonicalRequestTarget(rawPath);
  if (c.ok !== (refCanonical(rawPath) !== undefined) || (c.ok && c.path !== refCanonical(rawPath))) {
    throw new Error(`${rawPath}: canonical ${JSON.stringify(c)}, reference ${refCanonical(rawPath)}`);
  }
  return c.ok ? c.path : undefined;
}

function refPathMatch(rule: Rule, rawPath: string): boolean {
  const path = refCanonical(rawPath)!;
  const rulePath = rule.path.replaceAll('%41', 'A');
  if (rule.type === 'Exact') return path === rulePath;
  const want = rulePath.split('/').filter((s, i, all) => !(s === '' && (i === 0 || i === all.length - 1)));
  const have = path.split('/').slice(1);
  return want.every((s, i) => have[i] === s);
}

function refLength(rule: Rule): number {
  const path = rule.path.replaceAll('%41', 'A');
  return rule.type !== 'Exact' && path.endsWith('/') && path !== '/' ? path.length - 1 : path === '/' && rule.type !== 'Exact' ? 0 : path.length;
}

/** Index of the winning rule, `-1` for the default backend, undefined for 404. */
function reference(rules: readonly Rule[], withDefault: boolean, host: string, path: string): number | undefined {
  let best: { i: number; score: [number, number, number] } | undefined;
  for (const [i, r] of rules.entries()) {
    const rank = refHostRank(r.host, host);
    if (rank === 0 || !refPathMatch(r, path)) continue;
    const score: [number, number, number] = [rank, refLength(r), r.type === 'Exact' ? 1 : 0];
    const better =
      !best ||
      score[0] > best.score[0] ||
      (score[0] === best.score[0] && (score[1] > best.score[1] || (score[1] === best.score[1] && score[2] > best.score[2]))) ||
      (score.every((v, k) => v === best!.score[k]) && (r.time < rules[best.i]!.time || (r.time === rules[best.i]!.time && i < best.i)));
    if (better) best = { i, score };
  }
  return best ? best.i : withDefault ? -1 : undefined;
}

// ---- the system under test -----------------------------------------------------------------------------------

function buildTable(rules: readonly Rule[], withDefault: boolean) {
  const backend = { service: { name: 'echo', port: { number: 80 } } };
  const objects: unknown[] = [
    { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
    { kind: 'Service', metadata: { name: 'echo', namespace: 'default' }, spec: { ports: [{ port: 80 }] } },
    {
      kind: 'EndpointSlice',
      metadata: { name: 'echo-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'echo' } },
      addressType: 'IPv4',
      ports: [{ port: 80 }],
      endpoints: [{ addresses: ['198.18.0.2'] }],
    },
  ];
  for (const [i, r] of rules.entries()) {
    const ingress: V1Ingress = {
      kind: 'Ingress',
      metadata: { name: `ing-${String(i).padStart(3, '0')}`, namespace: 'default', creationTimestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, r.time)) },
      spec: {
        ingressClassName: 'cloudflare-tunnel',
        rules: [
          {
            host: r.host.kind === 'none' ? undefined : r.host.kind === 'wildcard' ? `*.${r.host.name}` : r.host.name,
            http: { paths: [{ path: r.path, pathType: r.type, backend }] },
          },
        ],
      },
    };
    objects.push(ingress);
  }
  if (withDefault) {
    objects.push({
      kind: 'Ingress',
      metadata: { name: 'zz-default', namespace: 'default' },
      spec: { ingressClassName: 'cloudflare-tunnel', defaultBackend: backend },
    });
  }
  return new RouteTableBuilder(testRoutingConfig()).build(snapshotFromObjects(objects).snapshot);
}

function winnerIndex(id: string | undefined): number | undefined {
  if (id === undefined) return undefined;
  if (id === 'default/zz-default#default') return -1;
  return Number(/ing-(\d+)#/.exec(id)![1]);
}

test('match agrees with a scan-every-rule reference (hosts, wildcards, hostless, paths, precedence, conflicts)', (t) => {
  fc.assert(
    fc.property(fc.array(rule, { maxLength: 14 }), fc.boolean(), fc.array(request, { minLength: 1, maxLength: 25 }), (rules, withDefault, requests) => {
      const table = buildTable(rules, withDefault);
      for (const q of requests) {
        const path = matchedPath(q.path);
        if (path === undefined) continue;
        const got = winnerIndex(table.match(q.host, path)?.id);
        const want = reference(rules, withDefault, q.host, q.path);
        if (got !== want) {
          throw new Error(`${q.host} ${q.path}: table chose ${got}, reference ${want}; rules ${JSON.stringify(rules)}`);
        }
      }
      // Only the conflict losers are missing from the table; every rule is valid.
      const unexpected = table.diagnostics.filter((d) => d.reason !== 'RouteConflict');
      if (unexpected.length > 0) throw new Error(`unexpected diagnostics: ${JSON.stringify(unexpected)}`);
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('many prefixes on one host (the per-element probe index) agree with the reference', (t) => {
  fc.assert(
    fc.property(
      fc.array(rulePath, { minLength: 9, maxLength: 40 }),
      fc.array(
        request.map((r) => r.path),
        { minLength: 1, maxLength: 40 },
      ),
      (paths, requests) => {
        const rules: Rule[] = paths.map((path, i) => ({ host: { kind: 'exact', name: 'many.test' }, path, type: i % 5 === 0 ? 'Exact' : 'Prefix', time: 0 }));
        const table = buildTable(rules, false);
        for (const p of requests) {
          const path = matchedPath(p);
          if (path === undefined) continue;
          const got = winnerIndex(table.match('many.test', path)?.id);
          const want = reference(rules, false, 'many.test', p);
          if (got !== want) throw new Error(`${p}: table chose ${got}, reference ${want}; paths ${JSON.stringify(paths)}`);
        }
      },
    ),
    { numRuns: 200 },
  );
  t.pass();
});

test('request hosts: case, port and one trailing dot are ignored; IPv6 literals keep their brackets', (t) => {
  fc.assert(
    fc.property(domain, fc.constantFrom('', ':1', ':65535'), fc.boolean(), (h, port, dot) => {
      return requestHost(`${h.toUpperCase()}${dot ? '.' : ''}${port}`) === h;
    }),
  );
  t.is(requestHost('[::1]:8080'), '[::1]');
  t.is(requestHost('[FD00::2]'), '[fd00::2]');
});

test('rule host and path checks never throw and accept exactly what they return', (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.anything()), (value) => {
      const host = checkRuleHost(value);
      if (host.ok) {
        if (!/^(\*\.)?[a-z0-9.-]+$/.test(host.host) || host.host.length > 253) throw new Error(`accepted ${JSON.stringify(value)}`);
      }
      const path = checkRulePath(value, 'Prefix');
      if (path.ok && (path.path[0] !== '/' || /[?#\s]/.test(path.path) || path.path.includes('//'))) throw new Error(`accepted ${JSON.stringify(value)}`);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('the builder never throws for arbitrary Ingress content, and every diagnostic names its object', (t) => {
  const junk = fc.anything({ maxDepth: 4, withNullPrototype: true, withObjectString: true });
  const ingress = fc.record({
    kind: fc.constant('Ingress'),
    metadata: fc.oneof(
      junk,
      fc.record({
        name: fc.string(),
        namespace: fc.string(),
        annotations: fc.oneof(
          junk,
          fc.dictionary(
            fc.constantFrom('warren.dev/connect-timeout', 'warren.dev/x', 'kubernetes.io/ingress.class', 'warren.dev/backend-protocol'),
            fc.oneof(fc.string(), junk),
          ),
        ),
      }),
    ),
    spec: fc.oneof(
      junk,
      fc.record({
        ingressClassName: fc.constantFrom('cloudflare-tunnel', undefined),
        defaultBackend: junk,
        tls: junk,
        rules: fc.oneof(
          junk,
          fc.array(
            fc.record({
              host: fc.oneof(fc.string(), junk),
              http: fc.oneof(
                junk,
                fc.record({ paths: fc.oneof(junk, fc.array(fc.record({ path: fc.oneof(fc.string(), junk), pathType: fc.oneof(fc.string(), junk), backend: junk }))) }),
              ),
            }),
          ),
        ),
      }),
    ),
  });
  fc.assert(
    fc.property(fc.array(ingress, { maxLength: 6 }), fc.string(), fc.string(), (ingresses, host, path) => {
      const objects = [
        { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
        ...ingresses.map((ing, i) => ({ ...ing, metadata: typeof ing.metadata === 'object' && ing.metadata ? { ...ing.metadata, name: `i${i}` } : { name: `i${i}` } })),
      ];
      const table = new RouteTableBuilder(testRoutingConfig()).build(snapshotFromObjects(objects).snapshot);
      table.match(host, path);
      for (const d of table.diagnostics) {
        if (!d.object.name || !d.message.includes(d.object.name)) throw new Error(`diagnostic without object: ${JSON.stringify(d)}`);
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});
