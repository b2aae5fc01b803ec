import type { ExecutionContext } from 'ava';
import { FolderSource } from '../../src/local/index.js';

/**
 * Watches `folder` (20 ms debounce) until the test ends and resolves after the first load. `beforeStart` runs
 * on the new source before it starts, so listeners it adds see that first load too.
 */
export async function watchFolder(t: ExecutionContext, folder: string, beforeStart?: (source: FolderSource) => void): Promise<FolderSource> {
  const source = new FolderSource({ folder, debounceMs: 20 });
  beforeStart?.(source);
  const controller = new AbortController();
  const running = source.start(controller.signal);
  t.teardown(async () => {
    controller.abort();
    await running;
  });
  await source.waitForSync();
  return source;
}
