/**
 * `deno task eval <run-dir> [--checkpoint FILE] [--mode whole|slide] [--oracle gt] [--split S] [--limit N]`:
 * the run's model kind evaluates the checkpoint; the record is written under a name that says which
 * evaluation it holds (`eval-<split>[-<mode>][-first<N>][-oracle][-step<S>].json`, eval/eval_record.ts),
 * so the run's own record is never overwritten by another evaluation.
 */
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { openDataset } from "../data/open.ts";
import { checkRequest, writeEvaluationRecord } from "../eval/evaluation.ts";
import { parametersDigest } from "../eval/parameters_digest.ts";
import { bindKind, kindPart } from "../kinds/registry.ts";
import { loadRun } from "../train/load_run.ts";
import { runFlags } from "./train.ts";
import type { Provider } from "../runtime/execute.ts";
import { BOUNDS, checkpointFlag, intFlag, runArgument } from "./flag_schema.ts";

export const evalCommand = Command.make("eval", {
  run: runArgument(),
  checkpoint: checkpointFlag(),
  mode: Flag.Literals("mode", ["whole", "slide"]).pipe(
    Flag.optional,
    Flag.withDescription(
      "whole: each image in one pass; slide: overlapping crops averaged (default: the experiment's eval.mode)",
    ),
  ),
  oracle: Flag.Literals("oracle", ["gt"]).pipe(
    Flag.optional,
    Flag.withDescription(
      "select the ground-truth classes instead of the ranked ones (the record is eval-<split>-oracle.json)",
    ),
  ),
  split: Flag.String("split").pipe(
    Flag.optional,
    Flag.withDescription("the dataset split to evaluate (default: the dataset's test split)"),
  ),
  limit: intFlag("limit", BOUNDS.images, "only the first N images of the split").pipe(Flag.optional),
  ...runFlags,
}, (a) =>
  Effect.gen(function* () {
    const run = yield* loadRun(a.run, Option.getOrUndefined(a.checkpoint));
    yield* Console.log(`checkpoint ${run.checkpoint} (step ${run.step}): ${run.why}`);
    const e = run.experiment;
    const bound = yield* bindKind(e, loadRun);
    const evaluation = yield* kindPart(bound, "evaluation", "eval");
    const split = Option.getOrElse(a.split, () => e.data.dataset.testSplit);
    const mode = Option.getOrElse(a.mode, () => e.eval.mode);
    const oracle = Option.isSome(a.oracle);
    const limit = Option.getOrUndefined(a.limit);
    yield* checkRequest(evaluation, bound.kind.tag, { mode, oracle });
    const dataset = yield* openDataset(e.data.dataset, split);
    const result = yield* evaluation.run(run.state, dataset, {
      split,
      mode,
      oracle,
      provider: a.provider as Provider,
      threads: Option.getOrUndefined(a.threads),
      workers: Option.getOrUndefined(a.workers),
      limit,
    });
    const file = yield* writeEvaluationRecord(
      run.dir,
      evaluation,
      result,
      {
        split,
        step: run.step,
        checkpoint: run.checkpoint,
        mode,
        oracle,
        parameters: parametersDigest(run.state),
      },
      dataset,
      { runMode: e.eval.mode, limit, finalStep: e.train.steps },
    );
    yield* Console.log(
      `${evaluation.images(result)} images of ${dataset.name}/${split}, ${mode}${
        oracle ? ", ground-truth oracle" : ""
      }; wrote ${file}`,
    );
    yield* Console.log(evaluation.table(result, dataset));
  })).pipe(
    Command.withDescription(
      "Evaluate a run's checkpoint with its model kind's evaluation (semantic: per-class IoU/Acc, mIoU, mAP; panoptic: PQ).",
    ),
  );
