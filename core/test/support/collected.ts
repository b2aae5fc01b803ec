import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Whether each referent is gone once the queued ticks and immediates have run and two full collections followed. */
export async function collected(refs: readonly WeakRef<object>[]): Promise<boolean[]> {
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  gc();
  return refs.map((ref) => ref.deref() === undefined);
}
