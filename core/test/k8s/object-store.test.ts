import type { V1Ingress } from '@kubernetes/client-node';
import test from 'ava';
import { trimForCache } from '../../src/k8s/kinds.js';
import { ObjectStore, onlyStatusChanged } from '../../src/k8s/object-store.js';

const ing = (name: string, rv: string, extra: Partial<V1Ingress['metadata']> = {}, status?: string): V1Ingress => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, generation: 1, annotations: { a: '1' }, ...extra },
  spec: { ingressClassName: 'cloudflare-tunnel' },
  ...(status ? { status: { loadBalancer: { ingress: [{ hostname: status }] } } } : {}),
});

test('snapshots are copy-on-write: later writes never show in a snapshot already handed out', (t) => {
  const store = new ObjectStore<V1Ingress>();
  store.upsert('ns/a', ing('a', '1'));
  const first = store.snapshot();
  t.is(store.snapshot(), first, 'no copy while nothing changed');
  store.upsert('ns/b', ing('b', '2'));
  store.delete('ns/a');
  t.deepEqual([...first.keys()], ['ns/a']);
  t.deepEqual([...store.snapshot().keys()], ['ns/b']);
});

test('a relist applies as one diff: deletions, additions and updates within its scope only', (t) => {
  const store = new ObjectStore<V1Ingress>();
  store.upsert('ns/a', ing('a', '1'));
  store.upsert('ns/b', ing('b', '1'));
  store.upsert('other/c', ing('c', '1'));
  store.takeChanges();
  const changes = store.replace(new Map([['ns/b', ing('b', '2')], ['ns/d', ing('d', '1')]]), (k) => k.startsWith('ns/'));
  t.deepEqual(Object.fromEntries(changes), { 'ns/a': 'deleted', 'ns/b': 'updated', 'ns/d': 'added' });
  t.deepEqual([...store.snapshot().keys()].sort(), ['ns/b', 'ns/d', 'other/c']);
  t.deepEqual(store.takeChanges().sort(), ['ns/a', 'ns/b', 'ns/d']);
  t.deepEqual(store.takeChanges(), []);
  t.is(store.upsert('ns/b', ing('b', '2')), undefined, 'the same resourceVersion is no change');
});

test('updates that cannot change routes are classified status-only', (t) => {
  const store = new ObjectStore<V1Ingress>(onlyStatusChanged);
  store.upsert('ns/a', ing('a', '1'));
  t.is(store.upsert('ns/a', ing('a', '2', {}, 'x.cfargotunnel.com')), 'status-only');
  t.is(store.upsert('ns/a', ing('a', '3', { finalizers: ['warren.dev/cleanup'] })), 'status-only');
  t.is(store.upsert('ns/a', ing('a', '4', { annotations: { a: '2' } })), 'updated');
  t.is(store.upsert('ns/a', ing('a', '5', { annotations: { a: '2' }, generation: 2 })), 'updated');
  t.is(store.upsert('ns/a', ing('a', '6', { annotations: { a: '2' }, generation: 2, labels: { team: 'x' } })), 'updated');
  t.is(store.upsert('ns/a', ing('a', '7', { annotations: { a: '2' }, generation: 2, labels: { team: 'x' }, deletionTimestamp: new Date() })), 'updated');
});

test('cached objects lose managedFields and the last-applied copy, nothing else', (t) => {
  const obj = ing('a', '1', {
    managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"huge":true}', 'warren.dev/connect-timeout': '5s' },
  });
  trimForCache(obj);
  t.is(obj.metadata?.managedFields, undefined);
  t.deepEqual(obj.metadata?.annotations, { 'warren.dev/connect-timeout': '5s' });
  t.is(obj.metadata?.resourceVersion, '1');
});
