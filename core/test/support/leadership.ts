import type { Leadership } from '../../src/state/leadership.js';
import type { Published } from '../../src/state/published.js';

/** Leadership a test decides from moment to moment (`leading()` is read on every access). */
export function leadershipFrom(leading: () => boolean): Published<Leadership> {
  return {
    get current() {
      return { leading: leading(), term: 1 };
    },
    subscribe: () => () => {},
  };
}
