import { readFileSync } from 'node:fs';

/**
 * CPU time and resident memory of any process by pid, from /proc (Linux), so benchmarks can measure a
 * connector without its cooperation.
 */
const TICKS_PER_SECOND = 100;

/** User + system CPU time of `pid` in milliseconds. */
export function cpuTimeMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ", field 3 (state) is index 0; utime and stime are fields 14 and 15.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/**
 * Run-queue wait of `pid`'s main thread in milliseconds: the time it was ready to run but another thread had its
 * core (`/proc/<pid>/task/<pid>/schedstat`, second field, ns). For a Node process that is time its event loop had
 * work and could not do it — latency that neither it nor its peers caused, when other work shares the core.
 */
export function runQueueWaitMs(pid: number): number {
  return parseSchedstat(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8')).waitMs;
}

/** A schedstat line (`<on-CPU ns> <run-queue wait ns> <timeslices>`) in milliseconds. */
export function parseSchedstat(line: string): { cpuMs: number; waitMs: number } {
  const [cpu, wait] = line.trim().split(/\s+/).map(Number);
  if (!Number.isFinite(cpu) || !Number.isFinite(wait)) throw new Error(`schedstat: cannot read "${line.trim()}"`);
  return { cpuMs: cpu! / 1e6, waitMs: wait! / 1e6 };
}

/** Resident set size of `pid` in bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Samples the RSS of `pid` every `intervalMs` and reports the peak. */
export function peakRss(pid: number, intervalMs = 100): { stop(): number } {
  let peak = rssBytes(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(pid));
    } catch {
      // The process ended.
    }
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}
