/**
 * Evaluating a trained segmenter (the semantic kind, `kinds/semantic.ts`) on a split: stream the test images, predict each at the size of its
 * original label map, accumulate mmsegmentation's dataset-level intersection/union and the multi-label
 * average precision, and write example predictions for the report.
 */
import { Data, Effect, Stream } from "effect";
import { mkdir } from "node:fs/promises";
import type { ExperimentOf } from "../dsl/experiment.ts";
import type { Segmenter } from "../dsl/model.ts";
import { trainSize } from "../interpret/shapes.ts";
import type { Ranker } from "../interpret/segmenter.ts";
import { testLoader } from "../data/loader.ts";
import type { ClassTable } from "../data/classes.ts";
import { imageLabelsOf } from "../data/labels.ts";
import { segmentationAccumulator, type SegmentationSummary } from "./segmentation_metrics.ts";
import { multilabelAccumulator } from "./multilabel_ap.ts";
import { examplePicks, writeExample } from "./examples.ts";
import { makePredictor } from "./predictor.ts";
import type { RuntimeOptions } from "../runtime/execute.ts";
import type { Value } from "../ir/value.ts";

export interface EvaluateOptions extends RuntimeOptions {
  readonly split?: string;
  readonly mode: "whole" | "slide";
  readonly crop?: readonly [number, number] | null;
  readonly stride?: readonly [number, number] | null;
  readonly oracle?: boolean;
  readonly ranker?: Ranker;
  /**
   * The ranker-quality probe's α in [0, 1]: select by ξ's scores mixed with the ground truth
   * (layers/selection.ts `probeScores`); the mAP is then the mix's. A top-κ model with a ranking only.
   */
  readonly groundTruthWeight?: number;
  /** Write image / label / prediction PNGs of N images, spread over the split, into `examplesDir`. */
  readonly examples?: number;
  readonly examplesDir?: string;
  /** Evaluate only the first N images (quick checks). */
  readonly limit?: number;
  readonly workers?: number;
}

export interface EvaluationResult {
  readonly segmentation: SegmentationSummary;
  /** Multi-label mAP ×100, for models with a ranking. */
  readonly mAP: number | null;
  /** ξ's recall@κ ×100 and its κ (`recallKappa`), for models with a ranking and a κ. */
  readonly recallAtK: { readonly k: number; readonly value: number } | null;
  readonly images: number;
}

/** The ranker-quality probe asked of a model or with an α it cannot take; the message names why. */
export class RankerProbeError extends Data.TaggedError("RankerProbeError")<{ readonly reason: string }> {
  override get message(): string {
    return `evaluate: groundTruthWeight: ${this.reason}`;
  }
}

/** Why a model cannot be probed with α, or undefined. */
export const rankerProbeProblem = (
  model: Segmenter,
  alpha: number,
  options: { readonly oracle?: boolean; readonly ranker?: Ranker } = {},
): string | undefined =>
  !(alpha >= 0 && alpha <= 1)
    ? `α ${alpha} is outside [0, 1]`
    : !model.psi
    ? "a multi-label-only model selects nothing"
    : model.select._tag !== "TopK"
    ? `the model's selection is ${model.select._tag}, not top-κ`
    : !model.xi && !options.ranker
    ? "the model has no ranking (no ξ and no independent ranker)"
    : options.oracle
    ? "the oracle selects the ground truth already"
    : undefined;

/** κ of an experiment's recall@κ: `eval.recallAt`, else the model's top-κ, else none. */
export const recallKappa = (e: ExperimentOf<Segmenter>): number | undefined =>
  e.eval.recallAt ??
    (e.model.select._tag === "TopK" ? Math.min(e.model.select.k, e.model.classes) : undefined);

export const evaluate = (
  e: ExperimentOf<Segmenter>,
  state: ReadonlyMap<string, Value>,
  classes: ClassTable,
  options: EvaluateOptions,
) =>
  Effect.scoped(Effect.gen(function* () {
    const problem = options.groundTruthWeight === undefined
      ? undefined
      : rankerProbeProblem(e.model, options.groundTruthWeight, options);
    if (problem) return yield* new RankerProbeError({ reason: problem });
    const k = e.model.classes;
    const predictor = yield* makePredictor(e.model, state, { ...options, trainSize: trainSize(e) });
    const seg = segmentationAccumulator({ numClasses: k, ignoreIndex: classes.ignoreIndex });
    const ml = multilabelAccumulator({ numClasses: k });
    let images = 0, withScores = 0;
    const picks = yield* examplePicks(
      e,
      options.split,
      options.limit,
      options.examplesDir && e.model.psi ? options.examples ?? 0 : 0,
    );
    if (picks.indices.size > 0) yield* Effect.promise(() => mkdir(options.examplesDir!, { recursive: true }));
    let stream = testLoader(e.data.dataset, e.data.test, { split: options.split, workers: options.workers });
    if (options.limit !== undefined) stream = stream.pipe(Stream.take(options.limit));
    yield* Stream.runForEach(stream, (batch) =>
      Effect.gen(function* () {
        const { height, width, labels } = batch.original;
        const p = yield* predictor.predict(
          batch.images,
          batch.height,
          batch.width,
          [height, width],
          batch.labels,
        );
        if (e.model.psi) seg.add(p.classes, labels);
        if (p.scores) {
          ml.add(p.scores, imageLabelsOf(labels, k));
          withScores++;
        }
        if (picks.indices.has(images)) {
          yield* writeExample(options.examplesDir!, batch, p, classes, e, { index: images, of: picks.total });
        }
        images++;
      }));
    const kappa = recallKappa(e);
    return {
      segmentation: seg.summary(),
      mAP: withScores > 0 ? ml.summary().mAP : null,
      recallAtK: withScores > 0 && kappa !== undefined ? { k: kappa, value: ml.recallAt(kappa) } : null,
      images,
    } satisfies EvaluationResult;
  }));
