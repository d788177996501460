/**
 * `grid task <manifest> <i>`: what array task i of a submitted grid runs — one run of the grid (a spec
 * file with the grid's overrides, into the grid's run folder), with `--resume` semantics: nothing to do
 * when its evaluation record is there, resumed from its newest checkpoint when it has one, trained from
 * the start otherwise. Its log is `<run folder>/slurm-<array job>_<task>.log`: where it ran, train's
 * progress lines, and a last line saying how it ended (finished / stopped at step N / failed: why), which
 * `grid status` quotes.
 *
 * Slurm's `scancel` and time limit send SIGTERM before SIGKILL: train then finishes its step, writes a
 * checkpoint and stops, so the re-submitted task resumes bitwise.
 */
import { Cause, Effect, Exit, Option } from "effect";
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { finishedRun } from "../grid_runs.ts";
import { readManifest } from "./manifest.ts";

/** The log's name for this task: Slurm's `<array job>_<task>`, or `local_<task>` outside Slurm. */
export const taskLogName = (task: number, env = Deno.env.toObject()): string =>
  `slurm-${env.SLURM_ARRAY_JOB_ID || "local"}_${env.SLURM_ARRAY_TASK_ID || task}.log`;

/** Runs task `task` of the manifest `file`; returns the exit status (0 finished, 130 stopped, 1 failed). */
export const runTask = async (file: string, task: number): Promise<number> => {
  const m = await Effect.runPromise(readManifest(file));
  const index = m.tasks[task];
  if (index === undefined) {
    console.error(`grid task: ${file} has tasks 0-${m.tasks.length - 1}, not ${task}`);
    return 1;
  }
  const run = m.runs[index];
  mkdirSync(run.dir, { recursive: true });
  const log = join(run.dir, taskLogName(task));
  const say = (line: string) => appendFileSync(log, `${new Date().toISOString()} ${line}\n`);
  // The job's own .out file names the log, so a user reading it knows where to look.
  console.log(`grid task ${task} of ${file}: ${run.dir}; log ${log}`);
  say(
    `task ${task} of ${file} on ${hostname()}: ${run.spec}` +
      `${run.steps === undefined ? "" : ` --steps ${run.steps}`}${
        run.seed === undefined ? "" : ` --seed ${run.seed}`
      }${run.frozenBackbone === undefined ? "" : ` --frozen-backbone ${run.frozenBackbone}`}` +
      ` into ${run.dir} (${m.threads} thread${m.threads > 1 ? "s" : ""})`,
  );
  if (existsSync(run.record)) {
    say(`finished already (${run.record}); nothing to do`);
    return 0;
  }
  const exit = await Effect.runPromiseExit(
    finishedRun(run, false, {
      threads: m.threads,
      ...(m.workers === undefined ? {} : { workers: m.workers }),
      print: say,
    }),
  );
  if (Exit.isSuccess(exit)) {
    say(`finished: ${run.record}`);
    return 0;
  }
  const error = Cause.findErrorOption(exit.cause);
  const tag = Option.isSome(error) ? (error.value as { _tag?: string })._tag : undefined;
  const message = Option.isSome(error) && error.value instanceof Error
    ? error.value.message
    : Cause.pretty(exit.cause);
  if (tag === "Stopped") {
    say(
      `${message.split("\n")[0].replace(/; continue with --resume$/, "")}; submit the grid again to resume`,
    );
    return 130;
  }
  say(`failed: ${message.split("\n").filter((l) => l.trim() !== "").join("; ")}`);
  return 1;
};
