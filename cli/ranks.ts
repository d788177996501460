/**
 * `train` on several processes (MPI): starting the ranks (`--ranks N` runs mpirun itself), setting each
 * rank's defaults, and the rule for what a rank prints when something fails.
 *
 * Printing: a failure every rank meets at the same point (a bad flag or spec before MPI starts, a rank
 * count that does not fit, a NaN loss, a stop) is said once, by rank 0. A failure of some ranks only
 * names them: during setup the ranks agree on who failed (train/data_parallel.ts) and each failed rank
 * prints `rank r: …`; after setup a failed rank prints `rank r: …` and ends the job (MPI_Abort), since
 * the others wait for it in the next all-reduce. A rank that dies without a word (killed) is named by the
 * launcher: `mpirun noticed that process rank 1 … exited on signal 9 (Killed)`, `srun: error: node: task
 * 1: Killed`; `--ranks` adds one line of its own.
 */
import { Data, Effect } from "effect";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { detectLaunch, type Launch, LaunchError } from "../runtime/mpi.ts";
import { PeerRanksFailed, RankFailure } from "../train/data_parallel.ts";
import { errorLines } from "./errors.ts";

/** `--ranks N` was given, but the launcher started another number of ranks. */
export class RankCountFlagMismatch
  extends Data.TaggedError("RankCountFlagMismatch")<{ readonly flag: number; readonly launch: Launch }> {
  override get message(): string {
    return `train: --ranks ${this.flag}, but ${this.launch.launcher} started ${this.launch.size} rank${
      this.launch.size === 1 ? "" : "s"
    }; give the same count to both, or drop --ranks`;
  }
}

/** `--ranks N` cannot start mpirun. */
export class LauncherUnavailable
  extends Data.TaggedError("LauncherUnavailable")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason;
  }
}

/** The launch of this process (one of several ranks), none, or why it cannot train. */
export const currentLaunch = (): Effect.Effect<Launch | undefined, LaunchError> => {
  const launch = detectLaunch();
  return launch instanceof LaunchError ? Effect.fail(launch) : Effect.succeed(launch);
};

/** Physical cores of this machine (distinct core ids per package), or its logical CPUs when unknown. */
export const physicalCores = (): number => {
  const root = "/sys/devices/system/cpu";
  try {
    const cores = new Set<string>();
    for (const name of readdirSync(root)) {
      if (!/^cpu\d+$/.test(name)) continue;
      const topology = `${root}/${name}/topology`;
      if (!existsSync(`${topology}/core_id`)) continue;
      const read = (f: string) => readFileSync(`${topology}/${f}`, "utf8").trim();
      cores.add(`${read("physical_package_id")}:${read("core_id")}`);
    }
    if (cores.size > 0) return cores.size;
  } catch {
    // not Linux: fall through
  }
  return Math.max(1, navigator.hardwareConcurrency ?? 1);
};

/**
 * ONNX Runtime threads of each rank when `--threads` is not given: the machine's logical CPUs shared
 * among the ranks on it (at least 1), instead of ONNX Runtime's one per core in every rank.
 */
export const defaultRankThreads = (launch: Launch): number =>
  Math.max(1, Math.floor((navigator.hardwareConcurrency ?? 1) / launch.localSize));

/** Data-loading Workers of each rank when `--workers` is not given: one. */
export const DEFAULT_RANK_WORKERS = 1;

/** The mpirun command line `--ranks N` runs: this program again, as N ranks, without `--ranks`. */
export const mpirunArgs = (
  ranks: number,
  args: readonly string[],
  { root = Deno.uid() === 0, cores = physicalCores() }: { root?: boolean; cores?: number } = {},
): string[] => {
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--ranks") i++;
    else if (!args[i].startsWith("--ranks=")) rest.push(args[i]);
  }
  return [
    ...(root ? ["--allow-run-as-root"] : []),
    // Open MPI refuses more ranks than cores unless told.
    ...(ranks > cores ? ["--oversubscribe"] : []),
    // Each rank runs its own ONNX Runtime threads (--threads): no pinning of a rank to one core.
    "--bind-to",
    "none",
    "-np",
    String(ranks),
    Deno.execPath(),
    "run",
    "-A",
    fileURLToPath(Deno.mainModule),
    ...rest,
  ];
};

/**
 * Environment `--ranks` adds for its ranks: Open MPI's waiting ranks yield the core (sched_yield) instead
 * of spinning, unless the user chose (OMPI_MCA_mpi_yield_when_idle). Open MPI spins when it sees no more
 * ranks than cores; on a machine shared with other work (or with the ranks' own data-loading Workers) the
 * spinning rank takes the core its peer needs: the quickstart's 8 MiB gradient all-reduce between 2 ranks
 * took 99 ms spinning and 75 ms yielding, 124 per-parameter all-reduces 1308 ms and 52 ms, at a load
 * average of 11–14 on 2 cores (BENCHMARKS.md, "Data-parallel training (MPI)").
 */
export const rankEnvironment = (): Record<string, string> => ({
  OMPI_MCA_mpi_yield_when_idle: Deno.env.get("OMPI_MCA_mpi_yield_when_idle") ?? "1",
});

/** What a line of mpirun's output says about a rank that died, if it says so. */
export const deadRank = (line: string): string | undefined => {
  const m = /process rank (\d+) with PID \d+ on node (\S+) exited on signal (\d+) \(([^)]*)\)/.exec(line);
  if (m) return `rank ${m[1]} (on ${m[2]}) died: signal ${m[3]} (${m[4]})`;
  const c = /process rank (\d+) with PID \d+ on node (\S+) exited on signal/.exec(line);
  return c ? `rank ${c[1]} (on ${c[2]}) died` : undefined;
};

/**
 * mpirun's stderr, line by line, without its box saying that a rank returned a non-zero status (the rank
 * said why, in its own line): each call returns the lines to show now; `flush` what a cut-off box held.
 */
export const mpirunOutputFilter = (): ((line: string) => string[]) & { flush: () => string[] } => {
  let box: string[] | undefined;
  const rule = (line: string) => /^-{20,}$/.test(line.trim());
  const filter = (line: string): string[] => {
    if (box === undefined) {
      if (!rule(line)) return [line];
      box = [line];
      return [];
    }
    box.push(line);
    if (!rule(line)) return [];
    const done = box;
    box = undefined;
    // "… 1 process returned a non-zero exit code …", "… processes exited with non-zero status …"
    return /non-zero (exit code|status)/.test(done.join(" ")) ? [] : done;
  };
  return Object.assign(filter, {
    flush: () => {
      const rest = box ?? [];
      box = undefined;
      return rest;
    },
  });
};

/**
 * Runs `args` (this command line) as `ranks` MPI ranks through mpirun and returns its exit status,
 * passing its output through. When a rank died, one more line names it and says how to continue.
 */
export const launchRanks = (
  ranks: number,
  args: readonly string[],
): Effect.Effect<number, LauncherUnavailable> =>
  Effect.tryPromise({
    try: async () => {
      if (!onPath("mpirun")) throw new Deno.errors.NotFound("mpirun");
      // mpirun in a session of its own (setsid), so that Ctrl-C reaches this process only: mpirun's own
      // answer to SIGINT — SIGTERM to the ranks, SIGKILL 1 s later — would kill them mid-step. This
      // process passes SIGTERM to the ranks instead: they stop together after the step in progress (the
      // stop flag rides with the gradients), rank 0 writes a checkpoint, and the job ends. A second
      // Ctrl-C ends mpirun's job at once.
      const own = onPath("setsid");
      const child = new Deno.Command(own ? "setsid" : "mpirun", {
        args: [...(own ? ["mpirun"] : []), ...mpirunArgs(ranks, args)],
        env: rankEnvironment(),
        stdin: "inherit",
        stdout: "inherit",
        stderr: "piped",
      }).spawn();
      let signals = 0;
      const stop = () => {
        signals++;
        if (signals === 1) { for (const pid of childrenOf(child.pid)) signal(pid, "SIGTERM"); }
        else signal(child.pid, "SIGTERM");
      };
      for (const s of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(s, stop);
      let dead: string | undefined, pending = "";
      const decoder = new TextDecoder(), encoder = new TextEncoder();
      const filter = mpirunOutputFilter();
      const pass = async (lines: readonly string[]) => {
        for (const line of lines) dead ??= deadRank(line);
        const shown = lines.flatMap(filter);
        if (shown.length) await Deno.stderr.write(encoder.encode(shown.map((l) => l + "\n").join("")));
      };
      for await (const chunk of child.stderr) {
        const lines = (pending + decoder.decode(chunk, { stream: true })).split("\n");
        pending = lines.pop()!;
        await pass(lines);
      }
      await pass([...(pending ? [pending] : []), ...filter.flush()]);
      const status = await child.status;
      for (const s of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(s, stop);
      if (dead) console.error(`train: ${dead}; the job stopped; continue the run with --resume`);
      // Stopped on request: the status a stopped train has (mpirun reports 1 for ranks that exited 130).
      return signals > 0 && !dead ? 130 : status.code;
    },
    catch: (e) =>
      new LauncherUnavailable({
        reason: e instanceof Deno.errors.NotFound
          ? `train: --ranks ${ranks} needs Open MPI's mpirun on PATH (apt install openmpi-bin libopenmpi-dev), ` +
            `or start the ranks yourself (mpirun -np ${ranks} …, srun --mpi=pmix -n ${ranks} …)`
          : `train: --ranks ${ranks}: cannot run mpirun: ${String(e).split("\n")[0]}`,
      }),
  });

/** Whether an executable `name` is on PATH. */
const onPath = (name: string): boolean =>
  (Deno.env.get("PATH") ?? "").split(":").some((dir) => dir !== "" && existsSync(`${dir}/${name}`));

/** The processes whose parent is `pid` (mpirun's ranks on this machine), from /proc. */
const childrenOf = (pid: number): number[] =>
  readdirSync("/proc").filter((e) => /^\d+$/.test(e)).flatMap((e) => {
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid ? [Number(e)] : [];
    } catch {
      return [];
    }
  });

const signal = (pid: number, s: Deno.Signal) => {
  try {
    Deno.kill(pid, s);
  } catch {
    // already gone
  }
};

/** Failures that every rank of a run meets at the same point: said once, by rank 0. */
const AGREED = new Set(["Stopped", "NonFiniteLoss", "RankCountMismatch", "DataParallelUnsupported"]);

/** Whether a failure after setup is met by every rank at once (no rank waits for another). */
export const agreedFailure = (e: unknown): boolean =>
  AGREED.has((e as { _tag?: string })?._tag ?? "") || e instanceof RankFailure ||
  e instanceof PeerRanksFailed;

/**
 * The lines a process prints for `failure` (`lines`: its ordinary lines): as they are for a process
 * alone; for one rank of several, by the rule in the module doc.
 */
export const rankLines = (failure: unknown, lines: readonly string[]): readonly string[] => {
  if (failure instanceof PeerRanksFailed || failure instanceof Said) return [];
  if (failure instanceof RankFailure) {
    const own = errorLines(failure.error);
    if (failure.failed.length === failure.size) return failure.rank === 0 ? own : [];
    return own.map((l) => `rank ${failure.rank}: ${l}`);
  }
  const launch = detectLaunch();
  if (launch instanceof LaunchError) return launch.rank === 0 ? lines : [];
  return launch && launch.size > 1 && launch.rank !== 0 ? [] : lines;
};

/** A failure whose lines were printed already; the process exits with `code`. */
export class Said extends Data.TaggedError("Said")<{ readonly code: number; readonly failure: unknown }> {
  override get message(): string {
    return errorLines(this.failure).join("; ");
  }
}

/** Exit status of a failure: 130 for a run stopped on request (Ctrl-C, SIGTERM), 1 otherwise. */
export const exitCode = (failure: unknown): number =>
  ["Stopped", "PredictionStopped"].includes((failure as { _tag?: string })?._tag ?? "") ? 130 : 1;

/** Prints a rank's lines for `failure` (the rule in the module doc) and returns it as `Said`. */
export const sayNow = (failure: unknown): Said => {
  for (const line of rankLines(failure, errorLines(failure))) console.error(line);
  return new Said({ code: exitCode(failure), failure });
};

/** For a rank after setup: the lines of a failure its peers do not share, and the end of the job. */
export const abortLines = (rank: number, failure: unknown): string[] =>
  errorLines(failure).map((l) => `rank ${rank}: ${l}`);
