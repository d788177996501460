/**
 * `grid status <grid or manifest>`: the runs of a submitted grid and where each stands — finished (its
 * headline metric), running (its step, from metrics.jsonl), failed (the last line of its log: the error,
 * or "stopped at step N" after scancel or a time limit), pending (queued, or not submitted) — with the
 * Slurm job/task of each. What is in the queue comes from `squeue`; the rest from the run folders, so a
 * status without a reachable controller still tells finished from unfinished runs.
 */
import { Effect } from "effect";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { hostname } from "node:os";
import process from "node:process";
import { type Manifest, type ManifestRun, readManifest, resolveManifest } from "./manifest.ts";
import { headline, headlineText } from "../run_record.ts";
import { isQueued, queue, type QueueEntry, SlurmError } from "./slurm_commands.ts";

/** Where one run stands. */
export type RunState =
  | { readonly _tag: "finished"; readonly metric: string }
  | { readonly _tag: "running"; readonly step: number; readonly steps?: number }
  | { readonly _tag: "failed"; readonly line: string }
  | { readonly _tag: "pending"; readonly why: string };

/** What the run folder and the queue say about a run. */
export interface RunFacts {
  /** The headline metric of its evaluation record, when it has one. */
  readonly metric?: string;
  /** Its job's entry in the queue; undefined when the job is not queued (or unknown). */
  readonly queued?: QueueEntry;
  /** Whether a train holds the folder's lock on this host (a run trained outside Slurm). */
  readonly locked: boolean;
  /** The last step metrics.jsonl records, and the run's step count, when it has started. */
  readonly step?: number;
  readonly steps?: number;
  /** The last line of its newest log, when it left one. */
  readonly lastLine?: string;
}

/** Where a run stands, from its facts. */
export const runState = (f: RunFacts): RunState => {
  if (f.metric !== undefined) return { _tag: "finished", metric: f.metric };
  const s = f.queued?.state;
  if (s === "RUNNING" || s === "COMPLETING" || s === "CONFIGURING" || f.locked) {
    return { _tag: "running", step: f.step ?? 0, ...(f.steps === undefined ? {} : { steps: f.steps }) };
  }
  if (s !== undefined && isQueued(s)) {
    return { _tag: "pending", why: `queued (${s.toLowerCase()}: ${f.queued!.reason})` };
  }
  if (f.lastLine !== undefined) return { _tag: "failed", line: f.lastLine };
  if (f.step !== undefined) return { _tag: "failed", line: `stopped at step ${f.step} (no log left)` };
  return { _tag: "pending", why: "not queued: submit the grid again to train it" };
};

const lines = (file: string) => readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");

/** The last train step metrics.jsonl records, or undefined. */
const lastStep = (dir: string): number | undefined => {
  const file = join(dir, "metrics.jsonl");
  if (!existsSync(file)) return undefined;
  for (const line of lines(file).reverse()) {
    try {
      const r = JSON.parse(line);
      if (r.kind === "train" && typeof r.step === "number") return r.step;
    } catch {
      // A torn last line while the run writes.
    }
  }
  return undefined;
};

const plannedSteps = (dir: string): number | undefined => {
  try {
    return JSON.parse(readFileSync(join(dir, "experiment.json"), "utf8")).train?.steps;
  } catch {
    return undefined;
  }
};

/** Whether `<dir>/train.lock` names a live process on this host. */
const lockedHere = (dir: string): boolean => {
  try {
    const { pid, host } = JSON.parse(readFileSync(join(dir, "train.lock"), "utf8"));
    if (host !== hostname() || typeof pid !== "number") return false;
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The newest log a run left: its tasks' logs in its folder, else its job's .out file, else train.log. */
const newestLog = (run: ManifestRun, submission: string): string | undefined => {
  const inRun = existsSync(run.dir)
    ? readdirSync(run.dir).filter((f) => /^slurm-.*\.log$/.test(f)).map((f) => join(run.dir, f))
    : [];
  const newest = inRun.sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs).at(-1);
  if (newest) return newest;
  const out = run.job === undefined ? undefined : join(submission, `${run.job}.out`);
  if (out && existsSync(out)) return out;
  const trainLog = join(run.dir, "train.log");
  return existsSync(trainLog) ? trainLog : undefined;
};

/** The facts of one run of a manifest, with the queue (undefined: unknown). */
export const runFacts = (
  run: ManifestRun,
  submission: string,
  q: ReadonlyMap<string, QueueEntry> | undefined,
): RunFacts => {
  const log = newestLog(run, submission);
  // Logs start their lines with the time; the listing shows what happened.
  const last = log === undefined ? undefined : lines(log).at(-1)?.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /, "");
  const step = lastStep(run.dir), steps = plannedSteps(run.dir);
  const queued = run.job === undefined ? undefined : q?.get(run.job);
  return {
    ...(existsSync(run.record) ? { metric: headlineText(headline(run.record)) } : {}),
    ...(queued ? { queued } : {}),
    locked: lockedHere(run.dir),
    ...(step === undefined ? {} : { step }),
    ...(steps === undefined ? {} : { steps }),
    ...(last === undefined ? {} : { lastLine: last }),
  };
};

const describe = (s: RunState): string => {
  switch (s._tag) {
    case "finished":
      return s.metric;
    case "running":
      return `step ${s.step}${s.steps === undefined ? "" : ` of ${s.steps}`}`;
    case "failed":
      return s.line;
    case "pending":
      return s.why;
  }
};

/** The status listing: a summary line, then one line per run (state, folder, job, detail). */
export const statusLines = (
  manifestFile: string,
  m: Manifest,
  states: readonly RunState[],
  q: ReadonlyMap<string, QueueEntry> | undefined,
  queueProblem?: string,
): string[] => {
  const count = (tag: RunState["_tag"]) => states.filter((s) => s._tag === tag).length;
  const job = (id: string | undefined) =>
    id === undefined ? undefined : `${id}${q?.get(id) ? ` ${q.get(id)!.state}` : ""}`;
  const head =
    `grid ${m.grid}: ${m.runs.length} runs: ${count("finished")} finished, ${count("running")} running, ` +
    `${count("failed")} failed, ${count("pending")} pending (${manifestFile}` +
    `${m.arrayJob ? `; array job ${m.arrayJob}` : ""}${
      m.reportJob ? `; report job ${job(m.reportJob)}` : ""
    })`;
  const dirWidth = Math.max(...m.runs.map((r) => r.dir.length));
  const jobWidth = Math.max(0, ...m.runs.map((r) => (r.job ?? "").length));
  return [
    head,
    ...(queueProblem ? [`  (queue unknown: ${queueProblem}; states from the run folders only)`] : []),
    ...m.runs.map((r, i) =>
      `  ${states[i]._tag.padEnd(8)}  ${r.dir.padEnd(dirWidth)}  ${(r.job ?? "-").padEnd(jobWidth)}  ${
        describe(states[i])
      }`
    ),
  ];
};

/** `grid status <target>`: prints the listing; exits 1 when there is no manifest to read. */
export const printStatus = async (target: string): Promise<void> => {
  const file = resolveManifest(target);
  if (file === undefined) {
    throw new SlurmError({
      reason: `${target}: no submitted grid here (a manifest.json, a grid's runs folder with slurm/, or a ` +
        "grid's name such as ablation or the name of a generic grid)",
    });
  }
  const m = await Effect.runPromise(readManifest(file));
  let q: Map<string, QueueEntry> | undefined, problem: string | undefined;
  try {
    q = await queue();
  } catch (e) {
    problem = e instanceof Error ? e.message : String(e);
  }
  const submission = dirname(file);
  const states = m.runs.map((r) => runState(runFacts(r, submission, q)));
  console.log(statusLines(relative(Deno.cwd(), file) || file, m, states, q, problem).join("\n"));
};
