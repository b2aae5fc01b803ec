import test, { type ExecutionContext } from 'ava';
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import { FolderSource, loadManifestFolder, type FolderLoadResult } from '../../src/local/index.js';
import type { SnapshotSource } from '../../src/reconcile/route-sync.js';
import { RouteTableBuilder, routingConfig } from '../../src/routes/index.js';
import { watchFolder } from './watch-folder.js';

const EXAMPLE = fileURLToPath(new URL('../../../../examples/local/', import.meta.url));

/** A private copy of the example folder. */
function exampleCopy(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'warren-local-'));
  cpSync(join(EXAMPLE, 'ingress.yaml'), join(dir, 'ingress.yaml'));
  cpSync(join(EXAMPLE, 'services.yaml'), join(dir, 'services.yaml'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The next published change, or a rejection after `ms`. */
function nextChange(source: FolderSource, ms = 5000): Promise<FolderLoadResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no folder change within ${ms} ms`));
    }, ms);
    const off = source.onLoad((result) => {
      clearTimeout(timer);
      off();
      resolve(result);
    });
  });
}

const builder = () => new RouteTableBuilder(routingConfig(parseConfig({}), []));

test('the example folder loads without problems and routes both demo hosts to the local origin', async (t) => {
  const result = await loadManifestFolder(EXAMPLE);
  t.deepEqual(result.problems, []);
  t.deepEqual(result.files, ['ingress.yaml', 'services.yaml']);
  const table = builder().build(result.snapshot);
  t.deepEqual(table.diagnostics, []);
  const app = table.match('app.localhost:8080', '/ws');
  t.is(app?.backend.service, 'web');
  t.deepEqual(
    app?.backend.endpoints.map((e) => e.key),
    ['127.0.0.1:3001'],
  );
  t.is(app?.annotations['idle-timeout'], 3_600_000);
  t.deepEqual(
    table.match('api.localhost', '/v1/items')?.backend.endpoints.map((e) => e.key),
    ['127.0.0.1:3002'],
  );
  t.is(table.match('api.localhost', '/other'), undefined);
});

test('editing a manifest changes the snapshot live, with the changed keys reported', async (t) => {
  const folder = exampleCopy(t);
  const source = await watchFolder(t, folder);
  const routes = builder();
  let table = routes.build(source.snapshot(), source.takeChanges());
  t.deepEqual(
    table.match('app.localhost', '/')?.backend.endpoints.map((e) => e.key),
    ['127.0.0.1:3001'],
  );

  const change = nextChange(source);
  const services = join(folder, 'services.yaml');
  writeFileSync(services, readFileSync(services, 'utf8').replace('port: 3001', 'port: 3005'));
  const result = await change;
  t.true(result.changed);
  const changes = source.takeChanges();
  t.deepEqual([...(changes.endpointSlices ?? [])], ['demo/web-local']);
  t.deepEqual([...(changes.ingresses ?? [])], []);
  table = routes.build(source.snapshot(), changes);
  t.deepEqual(
    table.match('app.localhost', '/')?.backend.endpoints.map((e) => e.key),
    ['127.0.0.1:3005'],
  );
});

test('a broken edit keeps the last good version in effect and says so; fixing it applies the fix', async (t) => {
  const folder = exampleCopy(t);
  const source = await watchFolder(t, folder);
  const before = source.snapshot().ingresses.get('demo/demo');
  const ingress = join(folder, 'ingress.yaml');
  const good = readFileSync(ingress, 'utf8');

  writeFileSync(ingress, good.replace('pathType: Prefix', 'pathType: [Prefix]'));
  const broken = await reloadUntil(source, (r) => r.problems.length > 0);
  t.is(source.snapshot().ingresses.get('demo/demo'), before, 'the old Ingress object stays');
  const messages = broken.problems.map((p) => p.message).join('\n');
  t.regex(messages, /ingress\.yaml, document 2 \(Ingress demo\/demo\): spec\.rules\[0\]\.http\.paths\[0\]\.pathType/);
  t.regex(messages, /ingress\.yaml: not applied; its last good version stays in effect/);

  const fixed = nextChange(source);
  writeFileSync(ingress, good.replace('path: /v1', 'path: /v2'));
  const result = await fixed;
  t.deepEqual(result.problems, []);
  t.not(source.snapshot().ingresses.get('demo/demo'), before);
  t.truthy(builder().build(source.snapshot()).match('api.localhost', '/v2'));
});

test('added and removed files add and remove their objects', async (t) => {
  const folder = exampleCopy(t);
  const source = await watchFolder(t, folder);
  source.takeChanges(); // the first read reports every key
  const added = nextChange(source);
  writeFileSync(join(folder, 'extra.yml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: extra\n  namespace: demo\nspec:\n  ports:\n    - port: 81\n');
  await added;
  t.true(source.snapshot().services.has('demo/extra'));
  t.deepEqual([...(source.takeChanges().services ?? [])], ['demo/extra']);

  const removed = nextChange(source);
  rmSync(join(folder, 'services.yaml'));
  await removed;
  t.deepEqual([...source.snapshot().services.keys()], ['demo/extra']);
  t.deepEqual([...source.snapshot().endpointSlices.keys()], []);
});

test('an editor-style save (write a temp file, rename over the original) is picked up', async (t) => {
  const folder = exampleCopy(t);
  const source = await watchFolder(t, folder);
  const change = nextChange(source);
  const temp = join(folder, '.services.yaml.swp');
  writeFileSync(temp, readFileSync(join(folder, 'services.yaml'), 'utf8').replace('port: 3002', 'port: 3009'));
  renameSync(temp, join(folder, 'services.yaml'));
  await change;
  const slice = source.snapshot().endpointSlices.get('demo/api-local') as { ports: Array<{ port: number }> };
  t.is(slice.ports[0]!.port, 3009);
});

test('reading unchanged files keeps object identities and reports no change', async (t) => {
  const folder = exampleCopy(t);
  const source = new FolderSource({ folder });
  const first = await source.load();
  source.takeChanges();
  const second = await source.load();
  t.true(first.changed);
  t.false(second.changed);
  t.is(second.snapshot.ingresses.get('demo/demo'), first.snapshot.ingresses.get('demo/demo'));
  const { extra, ...core } = source.takeChanges();
  t.deepEqual(
    Object.values(core).map((keys) => [...(keys as Iterable<string>)].length),
    [0, 0, 0, 0, 0],
  );
  t.deepEqual(
    [...(extra ?? new Map<string, Iterable<string>>())].filter(([, keys]) => [...keys].length > 0),
    [],
    'no changes of the Gateway API kinds either',
  );
});

test('metadata the API server would add is filled in: stable uid, generation that follows spec changes', async (t) => {
  const folder = exampleCopy(t);
  const a = new FolderSource({ folder });
  const first = (await a.load()).snapshot.ingresses.get('demo/demo')!;
  const again = (await new FolderSource({ folder }).load()).snapshot.ingresses.get('demo/demo')!;
  t.regex(first.metadata!.uid!, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
  t.is(again.metadata!.uid, first.metadata!.uid);
  t.is(first.metadata!.generation, 1);
  t.truthy(first.metadata!.creationTimestamp);

  const ingress = join(folder, 'ingress.yaml');
  writeFileSync(ingress, readFileSync(ingress, 'utf8').replace('path: /v1', 'path: /v3'));
  const edited = (await a.load()).snapshot.ingresses.get('demo/demo')!;
  t.is(edited.metadata!.generation, 2);
  t.is(edited.metadata!.uid, first.metadata!.uid);
  t.deepEqual(edited.metadata!.creationTimestamp, first.metadata!.creationTimestamp);
  t.not(edited.metadata!.resourceVersion, first.metadata!.resourceVersion);
});

test('an object defined in two files is taken from the first file by name, with an error for the other', async (t) => {
  const folder = exampleCopy(t);
  const copy = readFileSync(join(folder, 'services.yaml'), 'utf8').replace('port: 3001', 'port: 4001');
  writeFileSync(join(folder, 'z-copy.yaml'), copy);
  const result = await loadManifestFolder(folder);
  const slice = result.snapshot.endpointSlices.get('demo/web-local') as { ports: Array<{ port: number }> };
  t.is(slice.ports[0]!.port, 3001);
  const duplicate = result.problems.filter((p) => p.file.endsWith('z-copy.yaml'));
  t.is(duplicate.length, 4);
  t.regex(duplicate[0]!.message, /Service demo\/web is also defined in .*services\.yaml; the copy in .*services\.yaml is used/);
});

test('one bad file does not stop the others from loading, and other files are not read at all', async (t) => {
  const folder = exampleCopy(t);
  writeFileSync(join(folder, 'bad.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: [\n');
  writeFileSync(join(folder, 'notes.txt'), 'kind: Service\n');
  writeFileSync(join(folder, '.hidden.yaml'), 'kind: [broken');
  const result = await loadManifestFolder(folder);
  t.deepEqual(result.files, ['bad.yaml', 'ingress.yaml', 'services.yaml']);
  t.is(result.problems.length, 1);
  t.regex(result.problems[0]!.message, /bad\.yaml, document 1 \(line \d+\): invalid YAML/);
  t.is(result.snapshot.services.size, 2);
  t.truthy(builder().build(result.snapshot).match('app.localhost', '/'));
});

test('symlinked manifests are read; an unreadable entry is reported without stopping the rest', async (t) => {
  const folder = exampleCopy(t);
  const elsewhere = mkdtempSync(join(tmpdir(), 'warren-local-target-'));
  t.teardown(() => rmSync(elsewhere, { recursive: true, force: true }));
  writeFileSync(join(elsewhere, 'svc.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: linked, namespace: demo}\nspec: {ports: [{port: 80}]}\n');
  symlinkSync(join(elsewhere, 'svc.yaml'), join(folder, 'linked.yaml'));
  symlinkSync(elsewhere, join(folder, 'a-directory.yaml'));
  const result = await loadManifestFolder(folder);
  t.true(result.snapshot.services.has('demo/linked'));
  t.is(result.problems.length, 1);
  t.regex(result.problems[0]!.message, /a-directory\.yaml: cannot read: EISDIR/);
  t.is(result.snapshot.ingresses.size, 1);
});

test('a folder that does not exist is a configuration error naming source.folder', async (t) => {
  const source = new FolderSource({ folder: join(tmpdir(), 'warren-no-such-folder-xyz') });
  const err = await t.throwsAsync(source.start(new AbortController().signal));
  t.true(isWarrenError(err, ErrorCode.ConfigInvalid));
  t.regex(err!.message, /setting "source\.folder": cannot read folder .*warren-no-such-folder-xyz/);
});

test('the source plugs into route sync as its SnapshotSource: changes per kind, like the informers', async (t) => {
  const folder = exampleCopy(t);
  const source: SnapshotSource = await watchFolder(t, folder);
  const seen: Array<[string, Array<[string, string]>]> = [];
  const off = source.onChange((kind, changes) => seen.push([kind, [...changes]]));
  t.teardown(off);
  const loaded = new Promise<void>((resolve) => {
    const stop = (source as FolderSource).onLoad(() => {
      stop();
      resolve();
    });
  });
  const ingress = join(folder, 'ingress.yaml');
  writeFileSync(
    ingress,
    `${readFileSync(ingress, 'utf8')}---\n${'apiVersion: v1\nkind: Service\nmetadata: {name: extra, namespace: demo}\nspec: {ports: [{port: 80}]}\n'}`.replace(
      'path: /v1',
      'path: /v9',
    ),
  );
  await withTimeout(loaded);
  t.deepEqual(seen, [
    ['Ingress', [['demo/demo', 'updated']]],
    ['Service', [['demo/extra', 'added']]],
  ]);
  await source.secrets.setReferences(['demo/anything']);
});

test('Secrets of the folder are readable decoded, and their changes are announced', async (t) => {
  const folder = exampleCopy(t);
  const secret = join(folder, 'secret.yaml');
  writeFileSync(secret, 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: upstream-ca\n  namespace: demo\nstringData:\n  ca.crt: first\n');
  const source = await watchFolder(t, folder);
  t.is(source.secrets.get('demo', 'upstream-ca')?.['ca.crt']?.toString(), 'first');
  t.is(source.secrets.get('demo', 'missing'), undefined);
  const announced = new Promise<string>((resolve) => {
    const off = source.secrets.onChange((namespace, name) => {
      off();
      resolve(`${namespace}/${name}`);
    });
  });
  writeFileSync(secret, readFileSync(secret, 'utf8').replace('first', 'second'));
  t.is(await withTimeout(announced), 'demo/upstream-ca');
  t.is(source.secrets.get('demo', 'upstream-ca')?.['ca.crt']?.toString(), 'second');
});

/** Waits for a published result matching `predicate` (bounded). */
async function reloadUntil(source: FolderSource, predicate: (r: FolderLoadResult) => boolean, ms = 5000): Promise<FolderLoadResult> {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await source.load();
    if (predicate(result)) return result;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function withTimeout<T>(promise: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref())]);
}
