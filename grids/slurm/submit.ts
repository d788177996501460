/**
 * `grid <grid> … --slurm`: the grid's runs as one Slurm job array and its report as a job after it.
 *
 * Only runs that still need training are submitted: a finished run (its evaluation record is there) is
 * skipped, and so is one that an earlier submission still has pending or running (two trainers in one
 * folder would clash). Each array task trains one run with resume semantics (grids/slurm/task.ts), so a
 * task killed by `scancel` or its time limit — which checkpoints on SIGTERM — resumes from its checkpoint
 * when the same command is submitted again. The report job runs the grid's own command with
 * `--report-only` once every task has ended (`afterany`: a failed run is reported as missing, not waited
 * on forever).
 */
import { mkdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { Effect } from "effect";
import { taskCommand } from "../../figures/command_line.ts";
import type { GridRun } from "../grid_runs.ts";
import { isQueued, queue, requireSbatch, sbatch } from "./slurm_commands.ts";
import {
  MANIFEST,
  type Manifest,
  manifestsIn,
  readManifest,
  submissionName,
  submissionsIn,
  writeManifest,
} from "./manifest.ts";
import { type SlurmOptions, slurmOptions, withoutSlurmFlags } from "./slurm_flags.ts";

/** A word for bash: single-quoted. */
export const shellQuote = (s: string): string =>
  /^[\w./=:,@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;

/** grids/main.ts, as the jobs run it. */
const GRIDS_MAIN = new URL("../main.ts", import.meta.url).pathname;

/** The sbatch options every job of a submission shares: where it runs, and the user's passthrough. */
export const commonSbatchArgs = (o: SlurmOptions, cwd: string): string[] => [
  `--chdir=${cwd}`,
  ...(o.partition === undefined ? [] : [`--partition=${o.partition}`]),
  ...(o.time === undefined ? [] : [`--time=${o.time}`]),
  ...(o.account === undefined ? [] : [`--account=${o.account}`]),
  ...(o.memPerCpu === undefined ? [] : [`--mem-per-cpu=${o.memPerCpu}`]),
  `--cpus-per-task=${o.threads}`,
  ...o.sbatchArgs,
];

/** The array job's own options: one task per submitted run, at most `maxParallel` at once. */
export const arraySbatchArgs = (grid: string, tasks: number, o: SlurmOptions, folder: string): string[] => [
  `--job-name=kappa-${grid}`,
  `--array=0-${tasks - 1}${o.maxParallel === undefined ? "" : `%${o.maxParallel}`}`,
  // What happens before a task opens its log in the run folder (Deno failing to start, say).
  `--output=${join(folder, "%A_%a.out")}`,
];

/** The report job's own options: after every task of the array, whatever their outcome. */
export const reportSbatchArgs = (grid: string, after: readonly string[], folder: string): string[] => [
  `--job-name=kappa-${grid}-report`,
  ...(after.length ? [`--dependency=afterany:${after.join(":")}`] : []),
  `--output=${join(folder, "report-%j.out")}`,
];

/** A job script: `exec` of `command` (each word quoted), then `tail` as written (a variable to expand). */
const script = (comment: string, command: readonly string[], tail = "") =>
  `#!/bin/bash\n# ${comment}\nexec ${command.map(shellQuote).join(" ")}${tail}\n`;

/**
 * The runs an earlier submission of this grid still has pending or running: folder → its job
 * (`<array>_<task>`).
 */
const stillQueued = async (root: string): Promise<Map<string, string>> => {
  const earlier = manifestsIn(root);
  if (earlier.length === 0) return new Map();
  const q = await queue();
  const queued = new Map<string, string>();
  for (const file of earlier) {
    const m = await Effect.runPromise(readManifest(file));
    for (const r of m.runs) {
      const state = r.job === undefined ? undefined : q.get(r.job)?.state;
      if (state !== undefined && isQueued(state)) queued.set(r.dir, r.job!);
    }
  }
  return queued;
};

/**
 * Submits the grid `grid` (its command name), run with `args`, whose runs live under `root`: writes
 * `<root>/slurm/<time>/` (manifest.json, array.sh, report.sh; the jobs' .out files land there too),
 * submits, and prints the job ids and how to follow them.
 */
export const submitGrid = async (
  grid: string,
  args: readonly string[],
  root: string,
  runs: readonly GridRun[],
): Promise<void> => {
  requireSbatch();
  const o = slurmOptions();
  const cwd = Deno.cwd();
  const queued = await stillQueued(root);
  const finished = runs.filter((r) => existsSync(r.record));
  const todo = runs.map((r, i) => ({ r, i })).filter(({ r }) => !existsSync(r.record) && !queued.has(r.dir));
  const folder = join(submissionsIn(root), submissionName());
  await mkdir(folder, { recursive: true });
  const manifestFile = join(folder, MANIFEST);
  const manifest: Manifest = {
    grid,
    args: withoutSlurmFlags(args),
    cwd,
    deno: Deno.execPath(),
    created: new Date().toISOString(),
    threads: o.threads,
    ...(o.workers === undefined ? {} : { workers: o.workers }),
    runs: runs.map((r) => ({ ...r, ...(queued.has(r.dir) ? { job: queued.get(r.dir)! } : {}) })),
    tasks: todo.map(({ i }) => i),
  };
  await writeManifest(manifestFile, manifest);
  const deno = Deno.execPath();
  const arrayScript = join(folder, "array.sh"), reportScript = join(folder, "report.sh");
  await writeFile(
    arrayScript,
    script(
      `kappa grid ${grid}: array task i trains run tasks[i] of ${MANIFEST} beside this script; its log is ` +
        "<run folder>/slurm-<job>_<task>.log",
      [deno, "run", "-A", GRIDS_MAIN, "task", manifestFile],
      ' "$SLURM_ARRAY_TASK_ID"',
    ),
  );
  await writeFile(
    reportScript,
    script(`kappa grid ${grid}: the report of the runs finished so far`, [
      deno,
      "run",
      "-A",
      GRIDS_MAIN,
      grid,
      ...manifest.args,
      "--report-only",
    ]),
  );
  const common = commonSbatchArgs(o, cwd);
  const arrayJob = todo.length === 0
    ? undefined
    : await sbatch([...common, ...arraySbatchArgs(grid, todo.length, o, folder), arrayScript]);
  const submitted: Manifest = arrayJob === undefined ? manifest : {
    ...manifest,
    runs: manifest.runs.map((r, i) => {
      const task = manifest.tasks.indexOf(i);
      return task < 0 ? r : { ...r, job: `${arrayJob}_${task}` };
    }),
    arrayJob,
  };
  await writeManifest(manifestFile, submitted);
  // The report waits for this array and for the arrays of earlier submissions still training runs.
  const after = [
    ...new Set([...(arrayJob ? [arrayJob] : []), ...[...queued.values()].map((j) => j.split("_")[0])]),
  ];
  const reportJob = await sbatch([...common, ...reportSbatchArgs(grid, after, folder), reportScript]);
  await writeManifest(manifestFile, { ...submitted, reportJob });

  const rel = (p: string) => relative(cwd, p) || ".";
  const jobs = [...(arrayJob ? [arrayJob] : []), reportJob];
  console.log(
    [
      `grid ${grid}: ${runs.length} runs: ${finished.length} finished, ${queued.size} still queued by an ` +
      `earlier submission, ${todo.length} submitted` +
      (arrayJob
        ? ` as array job ${arrayJob} (tasks 0-${todo.length - 1}, ${o.threads} CPU${
          o.threads > 1 ? "s" : ""
        } each)`
        : "") +
      `; report job ${reportJob}${after.length ? ` after ${after.join(", ")} (afterany)` : ""}`,
      `  manifest  ${rel(manifestFile)}`,
      ...(arrayJob ? [`  logs      <run folder>/slurm-${arrayJob}_<task>.log`] : []),
      `  follow    squeue -j ${jobs.join(",")}   ·   ${taskCommand("grid")} status ${rel(root)}`,
      `  report    ${rel(join(folder, `report-${reportJob}.out`))} (and the files the grid writes)`,
      `  stop      scancel ${jobs.join(" ")}; the same command again resumes the runs from their checkpoints`,
    ].join("\n"),
  );
};
