/**
 * The panoptic mask-transformer kind (`PanopticSegmenter`: kMaX-DeepLab, ReMaX, RankSeg queries):
 * segments, judged by PQ.
 *
 * - training: cost graph → Hungarian matching on the host → loss + update graph; the loader carries each
 *   crop's COCO segments, from which every batch's targets are built (a mask per thing instance and per
 *   stuff class, the semantic labels they imply); masks beyond the query count are dropped, counted in
 *   the tally and reported in train.log at every checkpoint;
 * - evaluation: PQ / SQ / RQ (all, things, stuff) and the derived semantic map's mIoU, with the merging
 *   thresholds calibrated on the training split when the spec asks; the record is in fractions and holds
 *   the evaluated weights' digest, to which its calibration belongs;
 * - prediction: COCO panoptic PNGs and results file, pictures (`panoptic_predict.ts`);
 * - export: `classProbabilities`, `maskProbabilities`, and the merging rule in the metadata.
 */
import { Effect } from "effect";
import type { ExperimentOf } from "../dsl/experiment.ts";
import type { MergeThresholds, PanopticSegmenter } from "../dsl/model.ts";
import * as panoptic from "../interpret/panoptic.ts";
import { value } from "../ir/value.ts";
import type { Value } from "../ir/value.ts";
import {
  countTruncation,
  NO_TRUNCATION,
  panopticTargets,
  stackTargets,
  truncationReport,
  type TruncationTotals,
} from "../data/panoptic_targets.ts";
import type { Evaluation } from "../eval/evaluation.ts";
import {
  evaluatePanoptic,
  formatPanopticTable,
  type PanopticEvaluation,
  panopticLine,
  panopticRecord,
} from "../eval/panoptic_eval.ts";
import { toPercent } from "../eval/eval_record.ts";
import { exportMetadata } from "../eval/export_size.ts";
import type { Exporting } from "../eval/export_model.ts";
import { checkClasses } from "./checks.ts";
import { checkpointMerge } from "./panoptic_calibration.ts";
import { panopticPrediction } from "./panoptic_predict.ts";
import type { BoundKind, ModelKind, Training } from "./kind.ts";

const training = (e: ExperimentOf<PanopticSegmenter>): Training<TruncationTotals> => {
  const maxMasks = panoptic.maxMasks(e.model);
  const lossNames = [
    panoptic.LOSS,
    panoptic.MULTILABEL_LOSS,
    panoptic.PQ_CLASS_LOSS,
    panoptic.PQ_DICE_LOSS,
    panoptic.MASK_ID_LOSS,
    panoptic.SEMANTIC_LOSS,
  ];
  return {
    checkData: (dataset) => checkClasses(e.model, dataset),
    loader: { panoptic: true },
    stages: (shapes, optimizer, backbone) => panoptic.trainingStages(e.model, shapes, optimizer, backbone),
    features: (shapes) => panoptic.featureGraph(e.model, shapes),
    dataParallelStages: (shapes, optimizer, options) =>
      panoptic.dataParallelTrainingStages(e.model, shapes, optimizer, options),
    lossNames: (g) => lossNames.filter((n) => g.outputs.has(n)),
    tally: NO_TRUNCATION,
    feeds: (batch, tally) => {
      // Targets from the segment ids that went through the batch's crop and flip; their semantic labels
      // (crowd and void ignored) replace the semantic PNG's.
      const targets = batch.panoptic!.map((s, i) =>
        panopticTargets(s.segmentIds, s.segments, {
          maxMasks,
          ignoreIndex: e.model.ignoreIndex,
          source: batch.ids[i],
        })
      );
      const stacked = stackTargets(targets, e.model.classes);
      const dims = [batch.batchSize, batch.height, batch.width];
      const feeds: Record<string, Value> = {
        labels: value("int32", Int32Array.from(stacked.semantic, Number), dims),
        [panoptic.MASK_IDS]: value("int64", stacked.maskIds, dims),
        [panoptic.MASK_CLASSES]: value("int64", stacked.classes, [batch.batchSize, maxMasks]),
        [panoptic.MASK_COUNTS]: value("int64", stacked.counts, [batch.batchSize]),
      };
      return { feeds, tally: targets.reduce(countTruncation, tally) };
    },
    tallyLine: (tally) => truncationReport(tally, maxMasks),
  };
};

const pct = (x: number) => (100 * x).toFixed(2);

const evaluation = (e: ExperimentOf<PanopticSegmenter>): Evaluation<PanopticEvaluation> => ({
  // Whole images only: the merge runs on each image's own region; there is no class oracle.
  modes: ["whole"],
  oracle: false,
  run: (state, dataset, request) =>
    evaluatePanoptic(e, state, dataset.classes, {
      split: request.split,
      provider: request.provider,
      threads: request.threads,
      workers: request.workers,
      limit: request.limit,
    }),
  headline: { name: "PQ", higherIsBetter: true },
  headlineValue: (r) => 100 * r.pq.all.pq,
  images: (r) => r.images,
  metrics: (r) => ({
    PQ: toPercent(r.pq.all.pq),
    SQ: toPercent(r.pq.all.sq),
    RQ: toPercent(r.pq.all.rq),
    PQ_th: toPercent(r.pq.things.pq),
    PQ_st: toPercent(r.pq.stuff.pq),
    mIoU: toPercent(r.segmentation.mIoU),
  }),
  line: panopticLine,
  table: (r) => `${formatPanopticTable(r)}\nPQ=${pct(r.pq.all.pq)} mIoU=${pct(r.segmentation.mIoU)}`,
  record: (r, meta) =>
    panopticRecord(
      { split: meta.split, step: meta.step, checkpoint: meta.checkpoint, parameters: meta.parameters },
      r,
    ),
  report: false,
});

/** The panoptic export's metadata: the semantic export's size and normalization, and merging in words. */
const panopticMetadata = (
  e: ExperimentOf<PanopticSegmenter>,
  merge: MergeThresholds,
): Record<string, string> => ({
  ...exportMetadata(e),
  "kappa.postprocess": "mask-wise merging (host step, kappa eval/panoptic_merge.ts): per query the class = " +
    "argmax of classProbabilities[:, :K] (void column K dropped), confidence = that probability; binary mask = " +
    "maskProbabilities[:, :, :h, :w] > maskThreshold; paste queries by confidence x mean mask " +
    "probability, best first, keeping one if confidence >= thingThreshold / stuffThreshold and > overlapThreshold of its " +
    "mask is still free (values in kappa.merge); it claims the free pixels; same-class stuff joins one segment; unclaimed pixels are void (0); " +
    "then the segment ids to H0 x W0 by nearest neighbour: row y reads floor((y + 0.5) * h / H0), column x " +
    "reads floor((x + 0.5) * w / W0) (kappa predict --export-size follows this)",
  "kappa.outputs": "classProbabilities [batch, N, K+1] (void last), maskProbabilities [batch, N, H, W] " +
    "(softmax over the N queries per pixel)",
  "kappa.merge": JSON.stringify(merge),
});

const exporting = (e: ExperimentOf<PanopticSegmenter>): Exporting => ({
  open: (run, print) =>
    Effect.map(checkpointMerge(e, run, print), (merge) => ({
      graph: (shapes) => panoptic.inferenceGraph(e.model, shapes),
      outputs: [panoptic.CLASS_PROBABILITIES, panoptic.MASK_PROBABILITIES],
      metadata: panopticMetadata(e, merge),
    })),
});

/** The `PanopticSegmenter` kind's record. */
export const panopticKind: ModelKind<PanopticSegmenter> = {
  tag: "PanopticSegmenter",
  task: "panoptic",
  bind: (e) =>
    Effect.succeed(
      {
        kind: panopticKind as unknown as ModelKind,
        experiment: e,
        inferenceGraph: (shapes) => panoptic.inferenceGraph(e.model, shapes),
        training: training(e) as Training<unknown>,
        evaluation: evaluation(e) as Evaluation<unknown>,
        prediction: panopticPrediction(e),
        export: exporting(e),
      } satisfies BoundKind,
    ),
};
