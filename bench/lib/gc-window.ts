import type { GCProfilerResult } from 'node:v8';

/** What a window of a process's garbage collections moved into, and cost, the old generation. */
export interface GcWindow {
  /** Bytes scavenges moved from the young generation to the old (`promoted=` of `--trace-gc-nvp`, summed). */
  readonly promoted: number;
  readonly scavenges: number;
  readonly markCompacts: number;
}

const YOUNG = new Set(['new_space', 'new_large_object_space']);

/**
 * Sums a `v8.GCProfiler` window. A scavenge frees nothing outside the young generation, so what the other spaces
 * grew by during it is what it promoted (this equals `--trace-gc-nvp`'s `promoted=` summed over the scavenges).
 */
export function gcWindow(profile: GCProfilerResult | undefined): GcWindow {
  let promoted = 0;
  let scavenges = 0;
  let markCompacts = 0;
  for (const gc of profile?.statistics ?? []) {
    if (gc.gcType === 'MarkSweepCompact') markCompacts++;
    if (gc.gcType !== 'Scavenge') continue;
    scavenges++;
    const before = new Map(gc.beforeGC.heapSpaceStatistics.map((s) => [s.spaceName, s.spaceUsedSize]));
    for (const s of gc.afterGC.heapSpaceStatistics) if (!YOUNG.has(s.spaceName)) promoted += s.spaceUsedSize - (before.get(s.spaceName) ?? 0);
  }
  return { promoted, scavenges, markCompacts };
}
