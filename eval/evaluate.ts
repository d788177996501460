/**
 * Evaluating a trained segmenter (the semantic kind, `kinds/semantic.ts`) on a split: stream the test images, predict each at the size of its
 * original label map, accumulate mmsegmentation's dataset-level intersection/union and the multi-label
 * average precision, and write example predictions for the report.
 */
import { Effect, Stream } from "effect";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { AnyExperiment, ExperimentOf } from "../dsl/experiment.ts";
import type { Segmenter } from "../dsl/model.ts";
import { trainSize } from "../interpret/shapes.ts";
import type { Ranker } from "../interpret/segmenter.ts";
import { testLoader } from "../data/loader.ts";
import type { TestBatch } from "../data/batch.ts";
import type { ClassTable } from "../data/classes.ts";
import { imageLabelsOf } from "../data/labels.ts";
import { segmentationAccumulator, type SegmentationSummary } from "./segmentation_metrics.ts";
import { multilabelAccumulator } from "./multilabel_ap.ts";
import { colorizeMask, overlay, writePng } from "./colorize.ts";
import { makePredictor, type Prediction } from "./predictor.ts";
import type { RuntimeOptions } from "../runtime/execute.ts";
import type { Value } from "../ir/value.ts";

export interface EvaluateOptions extends RuntimeOptions {
  readonly split?: string;
  readonly mode: "whole" | "slide";
  readonly crop?: readonly [number, number] | null;
  readonly stride?: readonly [number, number] | null;
  readonly oracle?: boolean;
  readonly ranker?: Ranker;
  /** Write image / label / prediction PNGs of the first N images into `examplesDir`. */
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
  readonly images: number;
}

/** Undoes the test pipeline's normalization: [3, h, w] float → RGB bytes HWC. */
const denormalize = (
  x: Float32Array,
  h: number,
  w: number,
  mean: readonly number[],
  std: readonly number[],
) => {
  const rgb = new Uint8Array(h * w * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < h * w; i++) {
      rgb[i * 3 + c] = Math.max(0, Math.min(255, Math.round(x[c * h * w + i] * std[c] + mean[c])));
    }
  }
  return rgb;
};

const writeExample = (dir: string, batch: TestBatch, p: Prediction, classes: ClassTable, e: AnyExperiment) =>
  Effect.gen(function* () {
    const { height, width, labels } = batch.original;
    const id = batch.ids[0];
    const colors = classes.colors;
    const predRgb = colorizeMask(p.classes, width, height, colors, classes.ignoreIndex);
    yield* writePng(
      join(dir, `${id}-label.png`),
      colorizeMask(labels, width, height, colors, classes.ignoreIndex),
      width,
      height,
    );
    yield* writePng(join(dir, `${id}-pred.png`), predRgb, width, height);
    const { mean, std } = e.data.test;
    const rgb = denormalize(batch.images, batch.height, batch.width, mean, std);
    yield* writePng(join(dir, `${id}-image.png`), rgb, batch.width, batch.height);
    if (batch.height === height && batch.width === width) {
      yield* writePng(join(dir, `${id}-overlay.png`), overlay(rgb, predRgb, 0.5), width, height);
    }
  });

export const evaluate = (
  e: ExperimentOf<Segmenter>,
  state: ReadonlyMap<string, Value>,
  classes: ClassTable,
  options: EvaluateOptions,
) =>
  Effect.scoped(Effect.gen(function* () {
    const k = e.model.classes;
    const predictor = yield* makePredictor(e.model, state, { ...options, trainSize: trainSize(e) });
    const seg = segmentationAccumulator({ numClasses: k, ignoreIndex: classes.ignoreIndex });
    const ml = multilabelAccumulator({ numClasses: k });
    let images = 0, withScores = 0;
    if (options.examplesDir && options.examples) {
      yield* Effect.promise(() => mkdir(options.examplesDir!, { recursive: true }));
    }
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
        if (e.model.psi && options.examplesDir && images < (options.examples ?? 0)) {
          yield* writeExample(options.examplesDir, batch, p, classes, e);
        }
        images++;
      }));
    return {
      segmentation: seg.summary(),
      mAP: withScores > 0 ? ml.summary().mAP : null,
      images,
    } satisfies EvaluationResult;
  }));
