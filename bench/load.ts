/**
 * Background load: how many cores other processes kept busy while we measured. The machine may be
 * shared, and a busy core slows both sides (at T = 2 the slower thread sets the pace), so the report
 * states it next to the figures.
 */

/** Linux's USER_HZ: /proc reports CPU times in 1/100 s. */
const TICKS_PER_SECOND = 100;

/** Busy CPU seconds of the whole machine since boot, from the first ("cpu ") line of /proc/stat. */
export const machineBusySeconds = (procStat: string): number => {
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = procStat.split("\n")[0].trim().split(
    /\s+/,
  )
    .slice(1).map(Number);
  return (user + nice + system + irq + softirq + (steal ?? 0)) / TICKS_PER_SECOND;
};

/**
 * CPU seconds of a process and of its children that have been waited for, from /proc/<pid>/stat
 * (utime, stime, cutime, cstime: fields 14–17, counted after the parenthesized command name).
 */
export const processSeconds = (pidStat: string): number => {
  const fields = pidStat.slice(pidStat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state), so field k is fields[k - 3].
  return [14, 15, 16, 17].reduce((s, k) => s + Number(fields[k - 3]), 0) / TICKS_PER_SECOND;
};

export interface CpuSnapshot {
  readonly wallSeconds: number;
  readonly machineBusy: number;
  readonly own: number;
}

/** The current CPU counters, or undefined where /proc is not readable (not Linux). */
export const cpuSnapshot = (): CpuSnapshot | undefined => {
  try {
    return {
      wallSeconds: performance.now() / 1000,
      machineBusy: machineBusySeconds(Deno.readTextFileSync("/proc/stat")),
      own: processSeconds(Deno.readTextFileSync("/proc/self/stat")),
    };
  } catch {
    return undefined;
  }
};

/** Busy cores other than ours (this process and its finished children) between two snapshots. */
export const otherLoad = (before: CpuSnapshot, after: CpuSnapshot): number => {
  const wall = after.wallSeconds - before.wallSeconds;
  const others = after.machineBusy - before.machineBusy - (after.own - before.own);
  return wall > 0 ? Math.max(0, others / wall) : 0;
};

/** Cores other processes kept busy on average over a span of `seconds`. */
export interface Load {
  readonly cores: number;
  readonly seconds: number;
}

/** Runs `fn` and measures the other processes' CPU use meanwhile (NaN cores where /proc is missing). */
export const withLoad = async <A>(fn: () => Promise<A>): Promise<{ result: A; load: Load }> => {
  const before = cpuSnapshot();
  const result = await fn();
  const after = cpuSnapshot();
  if (!before || !after) return { result, load: { cores: NaN, seconds: 0 } };
  return {
    result,
    load: { cores: otherLoad(before, after), seconds: after.wallSeconds - before.wallSeconds },
  };
};

/** The time-weighted average of several spans' loads (NaN when none was measured). */
export const averageLoad = (loads: readonly Load[]): number => {
  const measured = loads.filter((l) => l.seconds > 0 && Number.isFinite(l.cores));
  const seconds = measured.reduce((s, l) => s + l.seconds, 0);
  return seconds > 0 ? measured.reduce((s, l) => s + l.cores * l.seconds, 0) / seconds : NaN;
};

/**
 * Waits until other processes keep fewer than `cores` cores busy over a one-second sample, for at most
 * `maxSeconds`; returns the last sample. Starting on a quiet machine keeps outside load out of the
 * figures when it is only a passing burst.
 */
export const waitForQuiet = async (cores: number, maxSeconds: number): Promise<number> => {
  const sample = async () =>
    (await withLoad(() => new Promise<void>((resolve) => setTimeout(resolve, 1000)))).load.cores;
  const deadline = performance.now() + maxSeconds * 1000;
  let load = await sample();
  while (load >= cores && performance.now() < deadline) load = await sample();
  return load;
};
