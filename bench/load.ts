/**
 * What /proc tells about a measurement. Background load: how many cores other processes kept busy while
 * we measured; the machine may be shared, and a busy core slows both sides (at T = 2 the slower thread
 * sets the pace), so the report states it next to the figures. Page faults: fresh memory that a step
 * had to map in.
 */

/**
 * Above this many cores of outside load the machine is not quiet: the bench waits for less, and the
 * report says the figures are disturbed.
 */
export const QUIET_LOAD = 0.1;

/** Linux's USER_HZ: /proc reports CPU times in 1/100 s. */
const TICKS_PER_SECOND = 100;

/** Busy CPU seconds of the whole machine since boot, from the first ("cpu ") line of /proc/stat. */
export const machineBusySeconds = (procStat: string): number => {
  const ticks = procStat.split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, _idle, _iowait, irq, softirq, steal = 0] = ticks;
  return (user + nice + system + irq + softirq + steal) / TICKS_PER_SECOND;
};

/** Field `k` (1-based, as proc(5) numbers them) of /proc/<pid>/stat; the command name may hold spaces. */
const statField = (pidStat: string, k: number): number =>
  Number(pidStat.slice(pidStat.lastIndexOf(")") + 2).split(" ")[k - 3]); // the text after ")" starts at field 3

/** CPU seconds of a process and of its children that have been waited for (utime, stime, cutime, cstime). */
export const processSeconds = (pidStat: string): number =>
  [14, 15, 16, 17].reduce((s, k) => s + statField(pidStat, k), 0) / TICKS_PER_SECOND;

/** Minor page faults of a process so far (field 10): pages the kernel had to map in, zeroed. */
export const minorFaults = (pidStat: string): number => statField(pidStat, 10);

/** Minor page faults of this process so far (NaN where /proc is not readable). */
export const ownMinorFaults = (): number => {
  try {
    return minorFaults(Deno.readTextFileSync("/proc/self/stat"));
  } catch {
    return NaN;
  }
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
