/** `deno task eval <run-dir> [--checkpoint FILE] [--mode whole|slide] [--oracle gt] [--split S]`. */
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { openDataset } from "../data/open.ts";
import { evaluate } from "../eval/evaluate.ts";
import { makeEvalRecord, writeEvalRecord } from "../eval/eval_record.ts";
import { formatMetricsTable } from "../eval/metrics_table.ts";
import { novelMask } from "../eval/base_novel.ts";
import { loadRun } from "../train/load_run.ts";
import { loadRanker } from "../train/ranker.ts";
import { runFlags } from "./train.ts";
import type { Provider } from "../runtime/execute.ts";
import { evaluatePanoptic, formatPanopticTable, writePanopticRecord } from "../eval/panoptic_eval.ts";
import { requireTask } from "../interpret/kinds.ts";
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
      "select the ground-truth classes instead of the ranked ones (writes eval-<split>-oracle.json)",
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
    const split = Option.getOrElse(a.split, () => e.data.dataset.testSplit);
    const dataset = yield* openDataset(e.data.dataset, split);
    if (e.model._tag === "PanopticSegmenter") {
      // Panoptic: PQ / SQ / RQ and the derived semantic map's mIoU (whole images; no slide or oracle).
      const pe = yield* requireTask(e, "panoptic", "eval");
      const r = yield* evaluatePanoptic(pe, run.state, dataset.classes, {
        split,
        provider: a.provider as Provider,
        threads: Option.getOrUndefined(a.threads),
        workers: Option.getOrUndefined(a.workers),
        limit: Option.getOrUndefined(a.limit),
      });
      const file = yield* writePanopticRecord(run.dir, {
        split,
        step: run.step,
        checkpoint: run.checkpoint,
        evaluation: r,
      });
      yield* Console.log(`${r.images} images of ${dataset.name}/${split}; wrote ${file}`);
      yield* Console.log(formatPanopticTable(r));
      yield* Console.log(
        `PQ=${(100 * r.pq.all.pq).toFixed(2)} mIoU=${(100 * r.segmentation.mIoU).toFixed(2)}`,
      );
      return;
    }
    const novel = yield* novelMask(dataset.classes.names, e.eval.novel, dataset.name);
    const mode = Option.getOrElse(a.mode, () => e.eval.mode);
    const crop = e.eval.crop ?? e.data.train.cropSize;
    const stride = e.eval.stride ?? ([Math.ceil((crop[0] * 2) / 3), Math.ceil((crop[1] * 2) / 3)] as const);
    const oracle = Option.isSome(a.oracle);
    const ranker = yield* loadRanker(e);
    const result = yield* evaluate(e, run.state, dataset.classes, {
      ranker,
      split,
      mode,
      crop,
      stride,
      oracle,
      provider: a.provider as Provider,
      threads: Option.getOrUndefined(a.threads),
      workers: Option.getOrUndefined(a.workers),
      limit: Option.getOrUndefined(a.limit),
    });
    const record = makeEvalRecord({
      split: oracle ? `${split}-oracle` : split,
      images: result.images,
      step: run.step,
      checkpoint: run.checkpoint,
      mode,
      classNames: dataset.classes.names,
      segmentation: result.segmentation,
      mAP: result.mAP,
      ...(novel ? { novel } : {}),
    });
    const file = yield* writeEvalRecord(run.dir, record);
    yield* Console.log(
      `${result.images} images of ${dataset.name}/${split}, ${mode}${
        oracle ? ", ground-truth oracle" : ""
      }; wrote ${file}`,
    );
    yield* Console.log(
      formatMetricsTable({
        classNames: dataset.classes.names,
        segmentation: result.segmentation,
        mAP: result.mAP ?? undefined,
        ...(novel ? { novel } : {}),
      }),
    );
  })).pipe(
    Command.withDescription("Evaluate a run's checkpoint: per-class IoU/Acc, aAcc, mIoU, multi-label mAP."),
  );
