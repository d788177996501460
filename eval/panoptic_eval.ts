/**
 * Evaluating a panoptic model: per test image, the inference graph (padded to the backbone's coarsest
 * stride), mask-wise merging on the host at the test pipeline's size (`panoptic_merge.ts`), the panoptic
 * map resized to the original size by nearest neighbour, then PQ / SQ / RQ over all, things and stuff (`panoptic_quality.ts`, panopticapi's
 * rules) against the COCO panoptic ground truth, and mIoU of the semantic map the panoptic map implies
 * (each segment's class on its pixels, void pixels predicted as nothing).
 */
import { Effect, Scope, Stream } from "effect";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type JsonFileError, readJsonFile } from "../io/json_file.ts";
import type { MergeThresholds, PanopticSegmenter } from "../dsl/model.ts";
import { panopticStrides } from "../dsl/model.ts";
import { CLASS_LOGITS, inferenceGraph, MASK_LOGITS } from "../interpret/panoptic.ts";
import type { ExperimentOf } from "../dsl/experiment.ts";
import { trainSize } from "../interpret/shapes.ts";
import { execute, type Executor, type ProviderUnavailable, type RuntimeOptions } from "../runtime/execute.ts";
import { graphStage, plan, type RuntimeError } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { testLoader } from "../data/loader.ts";
import { openDataset } from "../data/open.ts";
import type { ClassTable } from "../data/classes.ts";
import type { CocoDataset } from "../data/coco.ts";
import { InvalidLabels } from "../data/errors.ts";
import { validateSplit } from "../data/validate.ts";
import { resizeLabels } from "../data/resize.ts";
import type { DatasetSpec } from "../dsl/dataset.ts";
import {
  MERGE_DEFAULTS,
  type MergeOptions,
  type PanopticMap,
  pasteSegments,
  type PreparedMerge,
  prepareMerge,
} from "./panoptic_merge.ts";
import { panopticAccumulator, type PanopticSummary } from "./panoptic_quality.ts";
import { segmentationAccumulator, type SegmentationSummary } from "./segmentation_metrics.ts";

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/** One image's panoptic prediction at the requested output size. */
export interface PanopticPrediction extends PanopticMap {
  /** The derived semantic map: each pixel's segment class, `ignoreIndex` on void. */
  readonly semantic: Int32Array;
}

export interface PanopticPredictor {
  /**
   * Predicts one normalized image [1, 3, height, width] at `output` = [H0, W0]. The image is padded
   * bottom/right with 0 to `padTo` (default: the next multiple of the output stride); merging runs on
   * its own region, and the segment ids are resized to `output` by nearest neighbour.
   */
  readonly predict: (
    image: Float32Array,
    height: number,
    width: number,
    output: readonly [number, number],
  ) => Effect.Effect<PanopticPrediction, RuntimeError | ProviderUnavailable>;
  /** One network run, merged under each of `merges` (in that order). */
  readonly predictEach: (
    image: Float32Array,
    height: number,
    width: number,
    output: readonly [number, number],
    merges: readonly MergeOptions[],
    padTo?: readonly [number, number],
  ) => Effect.Effect<PanopticPrediction[], RuntimeError | ProviderUnavailable>;
}

/** A predictor with one session per padded input size, fed the trained state. */
export const makePanopticPredictor = (
  model: PanopticSegmenter,
  state: ReadonlyMap<string, Value>,
  isThing: readonly boolean[],
  options: RuntimeOptions & { readonly trainSize: readonly [number, number]; readonly merge?: MergeOptions },
): Effect.Effect<PanopticPredictor, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope;
    const sessions = new Map<string, Executor>();
    const stride = Math.max(4, ...panopticStrides(model.backbone));
    // One session per padded size: the merge runs on the host at the network's input size (the valid
    // region cropped out of the mask logits), and the panoptic map is resized to the output size by
    // nearest neighbour, so test images of many sizes share few sessions.
    const predictEach = (
      image: Float32Array,
      height: number,
      width: number,
      output: readonly [number, number],
      merges: readonly MergeOptions[],
      padTo?: readonly [number, number],
    ) =>
      Effect.gen(function* () {
        const [ph, pw] = padTo ?? [roundUp(height, stride), roundUp(width, stride)];
        const key = `${ph}x${pw}`;
        let ex = sessions.get(key);
        if (!ex) {
          const g = inferenceGraph(model, { batch: 1, height: ph, width: pw, trainSize: options.trainSize });
          ex = yield* execute(
            plan(key, g, [graphStage(g, { outputs: [CLASS_LOGITS, MASK_LOGITS] })]),
            options,
          )
            .pipe(Scope.provide(scope));
          for (const name of ex.state.keys()) {
            const v = state.get(name);
            if (v) ex.state.set(name, v);
          }
          sessions.set(key, ex);
        }
        const padded = new Float32Array(3 * ph * pw);
        for (let c = 0; c < 3; c++) {
          for (let y = 0; y < height; y++) {
            padded.set(
              image.subarray((c * height + y) * width, (c * height + y + 1) * width),
              (c * ph + y) * pw,
            );
          }
        }
        const out = yield* ex.run({ images: value("float32", padded, [1, 3, ph, pw]) });
        const n = model.numMaskSlots;
        const full = out.get(MASK_LOGITS)!.data as Float32Array; // [1, N, ph, pw]
        const masks = new Float32Array(n * height * width);
        for (let q = 0; q < n; q++) {
          for (let y = 0; y < height; y++) {
            const from = (q * ph + y) * pw;
            masks.set(full.subarray(from, from + width), (q * height + y) * width);
          }
        }
        const classLogits = out.get(CLASS_LOGITS)!.data as Float32Array;
        const size = { queries: n, classes: model.classes, pixels: height * width };
        // Merges that share a mask threshold share the softmax over queries and the paste order.
        const prepared = new Map<number, PreparedMerge>();
        const done = new Map<string, PanopticPrediction>();
        return merges.map((m) => {
          const { maskThreshold, ...rest } = { ...MERGE_DEFAULTS, ...m };
          let prep = prepared.get(maskThreshold);
          if (!prep) {
            prepared.set(maskThreshold, prep = prepareMerge(classLogits, masks, size, maskThreshold));
          }
          const merged = pasteSegments(prep, isThing, rest);
          // Thresholds that keep the same segments give the same map: resized and labelled once.
          const key = `${maskThreshold}:${JSON.stringify(merged.segments)}`;
          const seen = done.get(key);
          if (seen) return seen;
          const ids = resizeLabels(merged.ids, height, width, output[0], output[1]);
          const classOf = new Int32Array(merged.segments.length + 1).fill(model.ignoreIndex);
          for (const s of merged.segments) classOf[s.id] = s.category;
          const prediction = { ids, segments: merged.segments, semantic: ids.map((id) => classOf[id]) };
          done.set(key, prediction);
          return prediction;
        });
      });
    const predict = (image: Float32Array, height: number, width: number, output: readonly [number, number]) =>
      Effect.map(
        predictEach(image, height, width, output, [options.merge ?? model.merge]),
        ([p]) => p,
      );
    return { predict, predictEach };
  });

export interface PanopticEvaluation {
  /** Fractions (panopticapi's `pq_compute` values); ×100 for the usual percent. */
  readonly pq: PanopticSummary;
  /** Of the semantic map derived from the panoptic map. */
  readonly segmentation: SegmentationSummary;
  readonly images: number;
  /** With the model's `mergeCalibration`: the class thresholds chosen on the training split. */
  readonly calibration?: MergeCalibrationResult;
}

/** The class thresholds a `mergeCalibration` chose, and every candidate's PQ on the split it chose on. */
export interface MergeCalibrationResult {
  readonly split: string;
  readonly images: number;
  readonly thingThreshold: number;
  readonly stuffThreshold: number;
  readonly candidates: readonly { thingThreshold: number; stuffThreshold: number; pq: number }[];
}

export interface PanopticEvaluateOptions extends RuntimeOptions {
  readonly split?: string;
  readonly limit?: number;
  readonly workers?: number;
  /** Merge thresholds to use as given (no calibration); default: the model's. */
  readonly merge?: MergeOptions;
}

/** The candidates of a calibration, thing-major, each on top of `merge`. */
export const calibrationCandidates = (
  merge: MergeOptions,
  c: { thingThresholds: readonly number[]; stuffThresholds: readonly number[] },
): MergeOptions[] =>
  c.thingThresholds.flatMap((thingThreshold) =>
    c.stuffThresholds.map((stuffThreshold) => ({ ...merge, thingThreshold, stuffThreshold }))
  );

/** The index of the best PQ (the first on ties; NaN never wins). */
export const bestCandidate = (pqs: readonly number[]): number =>
  pqs.reduce(
    (best, pq, i) => (pq > (pqs[best] ?? -Infinity) || (best < 0 && !Number.isNaN(pq)) ? i : best),
    -1,
  );

/** PQ / SQ / RQ and the derived mIoU of a trained state on a COCO panoptic split, once per merge. */
export const evaluatePanopticEach = (
  e: ExperimentOf<PanopticSegmenter>,
  state: ReadonlyMap<string, Value>,
  classes: ClassTable,
  merges: readonly MergeOptions[],
  options: Omit<PanopticEvaluateOptions, "merge"> & {
    /** PQ only: the derived semantic maps' mIoU is not accumulated (its summary is empty). */
    readonly pqOnly?: boolean;
  } = {},
) =>
  Effect.scoped(Effect.gen(function* () {
    const k = e.model.classes;
    const split = options.split ?? e.data.dataset.testSplit;
    const dataset = (yield* openDataset(e.data.dataset, split)) as Partial<CocoDataset> & { name: string };
    if (!dataset.readPanoptic || !dataset.samples) {
      return yield* new InvalidLabels({
        file: dataset.name,
        message: "has no panoptic segments to evaluate",
      });
    }
    const sampleById = new Map(dataset.samples.map((s) => [s.id, s]));
    const isThing = classes.isThing ?? classes.names.map(() => false);
    const predictor = yield* makePanopticPredictor(e.model, state, isThing, {
      ...options,
      trainSize: trainSize(e),
    });
    const accumulators = merges.map(() => ({
      pq: panopticAccumulator({
        categories: classes.names.map((name, id) => ({ id, name, isThing: isThing[id] })),
      }),
      seg: segmentationAccumulator({ numClasses: k, ignoreIndex: classes.ignoreIndex }),
    }));
    let images = 0;
    let stream = testLoader(e.data.dataset, e.data.test, { split, workers: options.workers });
    if (options.limit !== undefined) stream = stream.pipe(Stream.take(options.limit));
    yield* Stream.runForEach(stream, (batch) =>
      Effect.gen(function* () {
        const { height, width, labels } = batch.original;
        const id = batch.ids[0];
        const predictions = yield* predictor.predictEach(
          batch.images,
          batch.height,
          batch.width,
          [height, width],
          merges,
        );
        const truth = yield* dataset.readPanoptic!(sampleById.get(id)!);
        // Segments of classes the dataset drops are void for PQ (panopticapi: not a category).
        const kept = truth.segments.filter((s) => s.category >= 0 && s.category < k);
        const keptIds = new Set(kept.map((s) => s.id));
        const ids = Int32Array.from(truth.segmentIds, (v) => keptIds.has(v) ? v : 0);
        const gt = {
          ids,
          segments: kept.map((s) => ({ id: s.id, category: s.category, iscrowd: s.isCrowd })),
        };
        predictions.forEach((p, i) => {
          accumulators[i].pq.add({
            ids: p.ids,
            segments: p.segments.map((s) => ({ id: s.id, category: s.category })),
          }, gt);
          if (!options.pqOnly) accumulators[i].seg.add(p.semantic, labels);
        });
        images++;
      }));
    return accumulators.map((a) => ({ pq: a.pq.summary(), segmentation: a.seg.summary(), images }));
  }));

/**
 * PQ / SQ / RQ and the derived mIoU of a trained state on a COCO panoptic split. With the model's
 * `mergeCalibration` (and no `merge` option), the class thresholds are first chosen on the dataset's
 * training split (all of its images) and the result says which.
 */
export const evaluatePanoptic = (
  e: ExperimentOf<PanopticSegmenter>,
  state: ReadonlyMap<string, Value>,
  classes: ClassTable,
  options: PanopticEvaluateOptions = {},
) =>
  Effect.gen(function* () {
    const { merge, ...rest } = options;
    const calibration = e.model.mergeCalibration;
    if (merge || !calibration) {
      const [r] = yield* evaluatePanopticEach(e, state, classes, [merge ?? e.model.merge], rest);
      return r as PanopticEvaluation;
    }
    const candidates = calibrationCandidates(e.model.merge, calibration);
    const trainSplit = e.data.dataset.trainSplit;
    const onTrain = yield* evaluatePanopticEach(e, state, classes, candidates, {
      ...rest,
      split: trainSplit,
      limit: undefined,
      pqOnly: true,
    });
    const best = Math.max(0, bestCandidate(onTrain.map((r) => r.pq.all.pq)));
    const chosen = candidates[best];
    const [r] = yield* evaluatePanopticEach(e, state, classes, [chosen], rest);
    return {
      ...r,
      calibration: {
        split: trainSplit,
        images: onTrain[0].images,
        thingThreshold: chosen.thingThreshold!,
        stuffThreshold: chosen.stuffThreshold!,
        candidates: candidates.map((c, i) => ({
          thingThreshold: c.thingThreshold!,
          stuffThreshold: c.stuffThreshold!,
          pq: onTrain[i].pq.all.pq,
        })),
      },
    };
  });

/** `PQ 1.23 SQ … RQ … PQ_th … PQ_st … mIoU …` (percent), as an evaluation line of a run ends. */
export const panopticLine = (r: PanopticEvaluation): string => {
  const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(2) : "nan");
  const { all, things, stuff } = r.pq;
  return `PQ ${pct(all.pq)} SQ ${pct(all.sq)} RQ ${pct(all.rq)} PQ_th ${pct(things.pq)} PQ_st ${
    pct(stuff.pq)
  } mIoU ${pct(r.segmentation.mIoU)}${calibrationNote(r)}`;
};

/** ` (class thresholds thing 0.3 / stuff 0.2, chosen on train2017)`, or nothing without calibration. */
const calibrationNote = (r: PanopticEvaluation): string =>
  r.calibration
    ? ` (class thresholds thing ${r.calibration.thingThreshold} / stuff ${r.calibration.stuffThreshold}, ` +
      `chosen on ${r.calibration.split})`
    : "";

/** The summary table: PQ / SQ / RQ (percent) for all, things and stuff (`n` categories each), mIoU. */
export const formatPanopticTable = (r: PanopticEvaluation): string => {
  const pct = (x: number) => (100 * x).toFixed(2).padStart(8);
  const rows = (["all", "things", "stuff"] as const).map((g) => {
    const s = r.pq[g];
    return `${g.padEnd(8)}${pct(s.pq)}${pct(s.sq)}${pct(s.rq)}${String(s.n).padStart(6)}`;
  });
  return [
    `${"".padEnd(8)}${"PQ".padStart(8)}${"SQ".padStart(8)}${"RQ".padStart(8)}${"n".padStart(6)}`,
    ...rows,
  ]
    .join("\n") +
    `\nmIoU (semantic map from the panoptic map) ${(100 * r.segmentation.mIoU).toFixed(2)}` +
    (r.calibration ? `\nmerging:${calibrationNote(r)}` : "");
};

/**
 * The JSON of a panoptic evaluation's record (`eval-<split>….json`): PQ / SQ / RQ and the derived mIoU as
 * fractions (per category too), the calibration if any, and `parameters`, the digest of the evaluated
 * weights (`eval/parameters_digest.ts`) that `calibratedMerge` ties the calibration to.
 */
export const panopticRecord = (
  meta: { split: string; step: number; checkpoint: string; parameters: string },
  evaluation: PanopticEvaluation,
) => ({ ...meta, units: "fraction", ...evaluation });

/**
 * The trivial panoptic predictor a model must beat: every pixel of every test image is one segment of
 * the stuff class with the most training pixels. Returns that class and its PQ (all categories).
 */
export const trivialPanopticQuality = (spec: DatasetSpec, classes: ClassTable, trainSplit: string) =>
  Effect.gen(function* () {
    const counts = (yield* validateSplit(spec, trainSplit)).pixelCounts;
    const isThing = classes.isThing ?? classes.names.map(() => false);
    let best = -1;
    counts.forEach((n, c) => {
      if (!isThing[c] && (best < 0 || n > counts[best])) best = c;
    });
    const dataset = (yield* openDataset(spec, spec.testSplit)) as Partial<CocoDataset> & { name: string };
    if (!dataset.readPanoptic || !dataset.samples) {
      return yield* new InvalidLabels({
        file: dataset.name,
        message: "has no panoptic segments to evaluate",
      });
    }
    const pq = panopticAccumulator({
      categories: classes.names.map((name, id) => ({ id, name, isThing: isThing[id] })),
    });
    for (const sample of dataset.samples) {
      const truth = yield* dataset.readPanoptic(sample);
      const kept = truth.segments.filter((s) => s.category >= 0 && s.category < classes.names.length);
      const keptIds = new Set(kept.map((s) => s.id));
      pq.add(
        { ids: new Int32Array(truth.segmentIds.length).fill(1), segments: [{ id: 1, category: best }] },
        {
          ids: Int32Array.from(truth.segmentIds, (v) => keptIds.has(v) ? v : 0),
          segments: kept.map((s) => ({ id: s.id, category: s.category, iscrowd: s.isCrowd })),
        },
      );
    }
    return { classIndex: best, className: classes.names[best], pq: pq.summary().all.pq };
  });

/**
 * The merge thresholds for a checkpoint of a run: the spec's, with the class thresholds that an evaluation
 * of these very weights chose on the training split, when the model has `mergeCalibration`. That
 * evaluation is the record in the run folder (`eval-*.json`) with a calibration and the same `parameters`
 * digest (`from` names it); a calibration of another checkpoint never applies. Without one: the spec's.
 */
export const calibratedMerge = (
  dir: string,
  e: ExperimentOf<PanopticSegmenter>,
  parameters: string,
): Effect.Effect<{ readonly merge: MergeThresholds; readonly from?: string }, JsonFileError> =>
  Effect.gen(function* () {
    if (!e.model.mergeCalibration || !existsSync(dir)) return { merge: e.model.merge };
    // Every record is read first (a record cut short is an error naming it, whichever checkpoint it is of),
    // so that whether one fails never depends on the order the folder lists them in.
    const names = readdirSync(dir).filter((n) => /^eval-.+\.json$/.test(n)).sort();
    const records = yield* Effect.forEach(
      names,
      (name) =>
        Effect.map(readJsonFile(join(dir, name)), (json) => ({
          file: join(dir, name),
          record: json as {
            parameters?: unknown;
            calibration?: { thingThreshold: number; stuffThreshold: number };
          } | null,
        })),
    );
    const found = records.find(({ record }) => record?.parameters === parameters && record.calibration);
    const c = found?.record?.calibration;
    if (found && c) {
      return {
        merge: { ...e.model.merge, thingThreshold: c.thingThreshold, stuffThreshold: c.stuffThreshold },
        from: found.file,
      };
    }
    return { merge: e.model.merge };
  });
