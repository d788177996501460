/**
 * The semantic segmenter kind (`Segmenter`: RankSeg / MLSeg, LarvSeg, the independent scheme's ranker):
 * per-pixel classes, judged by mIoU.
 *
 * - training: one graph (forward, losses, backward, update), with LarvSeg's memory bank read and written
 *   by host stages around it; feeds the pixel labels and, with LarvSeg's losses, the image-level labels;
 * - evaluation: mmsegmentation's dataset-level IoU (whole images or sliding windows, the ground-truth
 *   oracle), multi-label mAP, LarvSeg's base / novel split; the record is `EvalRecord` (percent);
 * - prediction: a mask and an overlay with a legend per image, `predictions.json` (`semantic_predict.ts`);
 * - export: `classes`, `logits`, `scores`, `selected`.
 */
import { Effect } from "effect";
import { type ExperimentOf, imageLabelInputs } from "../dsl/experiment.ts";
import { type Segmenter, usesImageLabels } from "../dsl/model.ts";
import * as segmenter from "../interpret/segmenter.ts";
import { trainSize } from "../interpret/shapes.ts";
import { type Value, value } from "../ir/value.ts";
import type { BatchLabels } from "../data/batch.ts";
import type { Dataset } from "../data/dataset.ts";
import { evaluate, type EvaluationResult } from "../eval/evaluate.ts";
import type { Evaluation } from "../eval/evaluation.ts";
import { makeEvalRecord, toPercent } from "../eval/eval_record.ts";
import { formatMetricsTable } from "../eval/metrics_table.ts";
import { baseNovelMIoU, novelMask } from "../eval/base_novel.ts";
import { exportMetadata } from "../eval/export_size.ts";
import type { Exporting } from "../eval/export_model.ts";
import { checkClasses, ExperimentDataMismatch } from "./checks.ts";
import { type LoadedRanker, loadRanker } from "./ranker.ts";
import { semanticPrediction } from "./semantic_predict.ts";
import type { BoundKind, ModelKind, Training } from "./kind.ts";

/** A semantic evaluation: the metrics, and what its table and record need. */
export interface SemanticEvaluation extends EvaluationResult {
  readonly classNames: readonly string[];
  /** [K] 1 = one of `eval.novel` (LarvSeg), when the experiment names novel classes. */
  readonly novel?: Uint8Array;
  readonly mode: "whole" | "slide";
  readonly oracle: boolean;
}

/** LarvSeg's losses need image-level labels from the data (e.g. of classes whose masks are hidden). */
export const checkImageLabels = (e: ExperimentOf<Segmenter>) =>
  usesImageLabels(e.model) && e.data.dataset.imageLabels === undefined
    ? Effect.fail(
      new ExperimentDataMismatch({
        path: "data.dataset.imageLabels",
        reason: `model.${
          e.model.imageLevelLoss ? "imageLevelLoss" : "attentiveClassifier"
        } trains on image-level labels; set it to "image" or "crop" (with the novel classes in "hidden")`,
      }),
    )
    : Effect.void;

/**
 * The per-image feeds of a graph with image-level labels: the multi-hot image-level labels as float32, the
 * per-image flag that the pixel labels are valid (1 for every image of a pixel-labelled dataset, 0 for the
 * images a mixed batch takes from an image-level source) and, when `known`, the per-class mask of known
 * labels (all ones where the batch has none).
 */
export const imageLabelFeeds = (
  batch: BatchLabels,
  classes: number,
  known = false,
): Record<string, Value> => {
  if (!batch.imageLabels) throw new Error("internal: a batch without image-level labels");
  const shape = [batch.batchSize, classes];
  return {
    ...(known
      ? {
        [segmenter.IMAGE_LABELS_KNOWN]: value(
          "float32",
          batch.imageLabelsKnown
            ? Float32Array.from(batch.imageLabelsKnown)
            : new Float32Array(batch.batchSize * classes).fill(1),
          shape,
        ),
      }
      : {}),
    [segmenter.IMAGE_LABELS]: value("float32", Float32Array.from(batch.imageLabels), [
      batch.batchSize,
      classes,
    ]),
    [segmenter.PIXEL_LABELLED]: value(
      "float32",
      batch.pixelLabelled
        ? Float32Array.from(batch.pixelLabelled)
        : new Float32Array(batch.batchSize).fill(1),
      [batch.batchSize],
    ),
  };
};

const training = (e: ExperimentOf<Segmenter>, ranker?: LoadedRanker): Training<undefined> => {
  const which = imageLabelInputs(e.model, e.data);
  return {
    checkData: (dataset: Dataset) =>
      Effect.gen(function* () {
        yield* checkClasses(e.model, dataset);
        yield* checkImageLabels(e);
        yield* novelMask(dataset.classes.names, e.eval.novel, dataset.name);
      }),
    loader: { panoptic: false },
    stages: (shapes, optimizer, backbone) =>
      segmenter.trainingStages(e.model, shapes, optimizer, ranker, backbone, which),
    features: (shapes) => segmenter.featureGraph(e.model, shapes),
    dataParallelStages: (shapes, optimizer, options) =>
      segmenter.dataParallelTrainingStages(e.model, shapes, optimizer, options, ranker, which),
    ...(ranker ? { frozen: { source: ranker.checkpoint, state: ranker.state } } : {}),
    lossNames: (g) => segmenter.LOSS_NAMES.filter((n) => g.outputs.has(n)),
    tally: undefined,
    feeds: (batch) => ({
      feeds: {
        labels: value("int32", batch.labels, [batch.batchSize, batch.height, batch.width]),
        ...(which.imageLabels ? imageLabelFeeds(batch, e.model.classes, which.known) : {}),
      },
      tally: undefined,
    }),
  };
};

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(2) : "nan");

const evaluation = (e: ExperimentOf<Segmenter>, ranker?: LoadedRanker): Evaluation<SemanticEvaluation> => ({
  modes: ["whole", "slide"],
  oracle: true,
  run: (state, dataset, request) =>
    Effect.gen(function* () {
      const novel = yield* novelMask(dataset.classes.names, e.eval.novel, dataset.name);
      const crop = e.eval.crop ?? trainSize(e);
      const stride = e.eval.stride ?? ([Math.ceil((crop[0] * 2) / 3), Math.ceil((crop[1] * 2) / 3)] as const);
      const r = yield* evaluate(e, state, dataset.classes, { ...request, ranker, crop, stride });
      return {
        ...r,
        classNames: dataset.classes.names,
        ...(novel ? { novel } : {}),
        mode: request.mode,
        oracle: request.oracle,
      };
    }),
  headline: { name: "mIoU", higherIsBetter: true },
  headlineValue: (r) => 100 * r.segmentation.mIoU,
  images: (r) => r.images,
  metrics: (r) => {
    const s = r.segmentation;
    return {
      mIoU: toPercent(s.mIoU),
      aAcc: toPercent(s.aAcc),
      mAcc: toPercent(s.mAcc),
      ...(r.mAP === null ? {} : { mAP: r.mAP }),
      ...(r.recallAtK === null ? {} : { recallAtK: r.recallAtK.value, recallK: r.recallAtK.k }),
      ...(r.novel === undefined ? {} : (() => {
        const bn = baseNovelMIoU(s.iou, r.novel);
        return { mIoUBase: toPercent(bn.base), mIoUNovel: toPercent(bn.novel) };
      })()),
    };
  },
  line: (r) => {
    const s = r.segmentation;
    return `mIoU ${pct(s.mIoU)} aAcc ${pct(s.aAcc)} mAcc ${pct(s.mAcc)} mAP ${
      r.mAP === null ? "n/a" : r.mAP.toFixed(2)
    }${r.recallAtK === null ? "" : ` recall@${r.recallAtK.k} ${r.recallAtK.value.toFixed(2)}`}`;
  },
  table: (r) =>
    formatMetricsTable({
      classNames: r.classNames,
      segmentation: r.segmentation,
      mAP: r.mAP ?? undefined,
      ...(r.novel ? { novel: r.novel } : {}),
    }),
  record: (r, meta) =>
    makeEvalRecord({
      split: meta.oracle ? `${meta.split}-oracle` : meta.split,
      images: r.images,
      step: meta.step,
      checkpoint: meta.checkpoint,
      mode: meta.mode,
      classNames: r.classNames,
      segmentation: r.segmentation,
      mAP: r.mAP,
      recallAtK: r.recallAtK,
      ...(r.novel ? { novel: r.novel } : {}),
    }),
  report: true,
});

const exporting = (e: ExperimentOf<Segmenter>, ranker?: LoadedRanker): Exporting => ({
  open: () =>
    Effect.succeed({
      graph: (shapes) => segmenter.inferenceGraph(e.model, shapes, { ranker }),
      outputs: [segmenter.CLASSES, segmenter.LOGITS, segmenter.SCORES, segmenter.SELECTED],
      metadata: exportMetadata(e),
    }),
});

/** The `Segmenter` kind's record. */
export const semanticKind: ModelKind<Segmenter> = {
  tag: "Segmenter",
  task: "semantic",
  bind: (e, runs) =>
    Effect.map(loadRanker(e, runs), (ranker): BoundKind => ({
      kind: semanticKind as unknown as ModelKind,
      experiment: e,
      inferenceGraph: (shapes) => segmenter.inferenceGraph(e.model, shapes, { ranker }),
      training: training(e, ranker) as Training<unknown>,
      evaluation: evaluation(e, ranker) as Evaluation<unknown>,
      prediction: semanticPrediction(e, ranker),
      export: exporting(e, ranker),
    })),
};
