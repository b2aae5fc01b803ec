/**
 * List paging of the reflector: pages follow the continue token until the last one, and a kind's page bound
 * (Secrets: a page is parsed whole and Secrets can be large) caps the requested page size.
 */
import test from 'ava';
import type { KubernetesListObject, V1Secret } from '@kubernetes/client-node';
import pino from 'pino';
import { staticAccess } from '../../src/k8s/api/access.js';
import { KubeClient } from '../../src/k8s/api/client.js';
import { kindSpecs, SECRET_PAGE_SIZE, type KindSpec, type ListPage } from '../../src/k8s/kinds.js';
import { ObjectStore } from '../../src/k8s/object-store.js';
import { Reflector } from '../../src/k8s/reflector.js';

/** A Secret spec whose list serves `total` Secrets from memory, recording each page request. */
function pagedSecrets(total: number, pages: ListPage[]): KindSpec<V1Secret> {
  // Nothing listens on port 1: the watch after the list fails at once and the reflector backs off.
  const real = kindSpecs(new KubeClient(staticAccess({ server: 'http://127.0.0.1:1' }))).Secret;
  return {
    ...real,
    async list(page): Promise<KubernetesListObject<V1Secret>> {
      pages.push(page);
      const start = page.continueToken ? Number(page.continueToken) : 0;
      const end = Math.min(total, start + page.limit);
      const items = Array.from({ length: end - start }, (_, i) => ({ metadata: { namespace: 'ns', name: `s-${start + i}`, resourceVersion: '1' } }));
      return {
        apiVersion: 'v1',
        kind: 'SecretList',
        items,
        metadata: { resourceVersion: '7', ...(end < total ? { continue: String(end) } : {}) },
      } as KubernetesListObject<V1Secret>;
    },
  };
}

/** Runs a reflector until its first list is applied; the watch that follows fails and waits out its backoff. */
async function listOnce(spec: KindSpec<V1Secret>, store: ObjectStore<V1Secret>, pageSize?: number): Promise<void> {
  const reflector = new Reflector<V1Secret>({
    spec,
    store,
    client: new KubeClient(staticAccess({ server: 'http://127.0.0.1:1' })),
    logger: pino({ level: 'silent' }),
    onChange: () => undefined,
    pageSize,
    backoffMs: { initial: 60_000, max: 60_000 },
  });
  const stop = new AbortController();
  const running = reflector.run(stop.signal);
  await reflector.whenSynced();
  stop.abort();
  await running;
}

test('Secret lists ask for at most SECRET_PAGE_SIZE per page and follow the continue token to the end', async (t) => {
  const pages: ListPage[] = [];
  const spec = pagedSecrets(250, pages);
  t.true(SECRET_PAGE_SIZE < 500);
  const store = new ObjectStore<V1Secret>();
  await listOnce(spec, store);
  t.deepEqual(
    pages.map((p) => [p.limit, p.continueToken]),
    [
      [SECRET_PAGE_SIZE, undefined],
      [SECRET_PAGE_SIZE, String(SECRET_PAGE_SIZE)],
      [SECRET_PAGE_SIZE, String(2 * SECRET_PAGE_SIZE)],
    ],
  );
  t.is(pages[0]!.fieldSelector, spec.fieldSelector);
  t.is(store.size, 250);
});

test('a smaller configured page size wins over the kind bound', async (t) => {
  const pages: ListPage[] = [];
  await listOnce(pagedSecrets(30, pages), new ObjectStore<V1Secret>(), 20);
  t.deepEqual(
    pages.map((p) => p.limit),
    [20, 20],
  );
});
