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
