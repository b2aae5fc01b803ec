import test from 'ava';
import fc from 'fast-check';
import { LayeredMap } from '../../src/routes/layered-map.js';

test('every version of a LayeredMap behaves like the Map it models, and older versions never change', (t) => {
  const op = fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.option(fc.integer(), { nil: undefined })), { maxLength: 120 });
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (batches) => {
      let version = LayeredMap.empty<number, number>();
      const model = new Map<number, number>();
      const history: Array<{ version: LayeredMap<number, number>; model: Map<number, number> }> = [];
      for (const batch of batches) {
        const changes = new Map(batch);
        version = version.with(changes);
        for (const [k, v] of changes) v === undefined ? model.delete(k) : model.set(k, v);
        history.push({ version, model: new Map(model) });
      }
      for (const { version: v, model: m } of history) {
        if (v.size !== m.size) return false;
        for (let k = 0; k <= 300; k++) if (v.get(k) !== m.get(k) || v.has(k) !== m.has(k)) return false;
        const entries = [...v.entries()].sort((a, b) => a[0] - b[0]);
        if (JSON.stringify(entries) !== JSON.stringify([...m.entries()].sort((a, b) => a[0] - b[0]))) return false;
        if ([...v.keys()].length !== m.size || [...v.values()].length !== m.size) return false;
      }
      return true;
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test('with() of no changes returns the same version', (t) => {
  const a = LayeredMap.empty<string, number>().with(new Map([['x', 1]]));
  t.is(a.with(new Map()), a);
  t.is(a.with(new Map([['y', undefined]])).size, 1);
});

test('changedSince names exactly the keys whose value differs between two versions over one base', (t) => {
  const op = fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined })), { maxLength: 12 });
  let compared = 0;
  fc.assert(
    fc.property(fc.array(op, { minLength: 2, maxLength: 12 }), (batches) => {
      const versions = [LayeredMap.empty<number, number>()];
      for (const batch of batches) versions.push(versions[versions.length - 1]!.with(new Map(batch)));
      for (const older of versions) {
        for (const newer of versions) {
          const changed = newer.changedSince(older);
          if (changed === undefined) continue; // different bases (a fold happened): caller compares in full
          compared++;
          const expected = new Set<number>();
          for (let k = 0; k <= 40; k++) if (newer.get(k) !== older.get(k)) expected.add(k);
          if (JSON.stringify([...changed].sort((a, b) => a - b)) !== JSON.stringify([...expected].sort((a, b) => a - b))) return false;
        }
      }
      return true;
    }),
    { numRuns: 200 },
  );
  t.true(compared > 1000, `only ${compared} pairs shared a base`);
});

test('changedSince is undefined across a fold, when the versions no longer share a base', (t) => {
  let v = LayeredMap.empty<number, number>().with(new Map(Array.from({ length: 1_000 }, (_, i) => [i, i] as [number, number])));
  const before = v;
  for (let i = 0; i < 200; i++) v = v.with(new Map([[i, -i]])); // overlay outgrows 64 + size/8: folded
  t.is(v.changedSince(before), undefined);
  t.deepEqual(v.with(new Map([[5, 7]])).changedSince(v), new Set([5]));
});
