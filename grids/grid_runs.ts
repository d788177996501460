/**
 * What every experiment grid (RankSeg ablation, LarvSeg, panoptic) does with one of its runs: train it
 * into its folder unless its evaluation record is there (resuming from its checkpoints when a sitting
 * was interrupted), then read the record. Grids resume across sittings this way.
 */
import { Effect } from "effect";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Experiment, train } from "../mod.ts";
import { flag } from "../figures/flags.ts";

/**
 * The flags every grid reads: `--seeds N` (3 by default), `--steps N` (an override of the specs' step
 * count, whose runs get folders of their own), `--only REGEX` (the spec files to run) and `--report-only`.
 */
export const gridFlags = () => ({
  seeds: Number(flag("seeds") ?? 3),
  steps: flag("steps") === undefined ? undefined : Number(flag("steps")),
  only: new RegExp(flag("only") ?? "."),
  reportOnly: Deno.args.includes("--report-only"),
});

/**
 * `--threads T` (intra-op threads per run) and `--workers W` (data-loading Workers), so that two grid
 * processes can share a machine (e.g. one per dataset at one thread each); a resumed run must keep its
 * thread count to stay bitwise the same.
 */
const runOptions = () => {
  const threads = flag("threads"), workers = flag("workers");
  return {
    ...(threads === undefined ? {} : { threads: Number(threads) }),
    ...(workers === undefined ? {} : { workers: Number(workers) }),
  };
};

/**
 * The run's evaluation record file, after training the run when it has none; undefined when it has none
 * and `reportOnly` says not to train.
 */
export const finishedRun = (e: Experiment, dir: string, reportOnly: boolean) =>
  Effect.gen(function* () {
    const record = join(dir, `eval-${e.data.dataset.testSplit}.json`);
    if (!existsSync(record)) {
      if (reportOnly) return undefined;
      const resume = existsSync(join(dir, "checkpoints"));
      console.error(`${resume ? "resuming" : "training"} ${dir}`);
      yield* train(e, { out: dir, resume, print: () => {}, ...runOptions() });
    }
    return record;
  });

/**
 * One point of a learning curve: the validation mIoU (%) after `step` steps, the training time before it,
 * and the base / novel means where the evaluation named novel classes (LarvSeg).
 */
export interface CurvePoint {
  readonly step: number;
  readonly mIoU: number;
  readonly seconds: number | null;
  readonly base?: number;
  readonly novel?: number;
}

/** The periodic evaluations of a learning-curve run (its metrics.jsonl), or [] when it has not run. */
export const learningCurve = (metrics: string): CurvePoint[] => {
  if (!existsSync(metrics)) return [];
  let seconds: number | null = null;
  const points: CurvePoint[] = [];
  for (const line of readFileSync(metrics, "utf8").split("\n").filter((l) => l.trim() !== "")) {
    const r = JSON.parse(line) as {
      kind?: string;
      step?: number;
      mIoU?: number;
      mIoUBase?: number;
      mIoUNovel?: number;
      elapsedSeconds?: number;
    };
    if (r.kind === "train" && typeof r.elapsedSeconds === "number") seconds = r.elapsedSeconds;
    if (r.kind === "eval" && typeof r.step === "number" && typeof r.mIoU === "number") {
      const split = typeof r.mIoUBase === "number" && typeof r.mIoUNovel === "number"
        ? { base: r.mIoUBase, novel: r.mIoUNovel }
        : {};
      points.push({ step: r.step, mIoU: r.mIoU, seconds, ...split });
    }
  }
  return points;
};
