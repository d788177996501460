/**
 * The per-sample pipelines: mmsegmentation's training augmentation and the test-time resize, from a decoded
 * full-resolution sample to normalized, fixed-layout arrays.
 *
 * Every random choice of a training sample comes from the one generator passed in, drawn in a fixed order
 * (rescale ratio, crop boxes, flip, photometric distortion), so a sample's augmentation depends only on
 * how that generator was addressed — `sampleRandom(seed, epoch, index)` — and not on which worker or in
 * which order samples were processed.
 */
import { Effect } from "effect";
import { type Random, random } from "../core/random.ts";
import { chooseCrop, cropArray, flipHorizontal } from "./crop.ts";
import type { Dataset, LabeledImage, PanopticLabels } from "./dataset.ts";
import { hideClasses, imageLabelsOf } from "./labels.ts";
import { normalizeRgb, padLabels } from "./normalize.ts";
import { applyDistortion, drawDistortion } from "./photometric.ts";
import { rescaleSize, resizeCropRgb, resizeLabels, resizeRgb } from "./resize.ts";
import type { TestPipeline, TrainPipeline } from "../dsl/dataset.ts";

/** Key of the per-sample augmentation streams: `random(seed, AUGMENT, epoch, index)`. */
export const AUGMENT = 0x41554731; // "AUG1"

/** The generator for the augmentation of the sample at `index` of epoch `epoch`'s order. */
export const sampleRandom = (seed: number, epoch: number, index: number): Random =>
  random(seed, AUGMENT, epoch, index);

/**
 * Key of the augmentation draws of a frozen backbone's feature cache: `random(0, DRAW, draw, sample)`.
 * No run's seed enters it, so every run and seed that shares a cache shares its draws.
 */
export const DRAW = 0x44524157; // "DRAW"

/** The generator for augmentation draw `draw` of the split's sample `sample` (feature caches). */
export const drawRandom = (draw: number, sample: number): Random => random(0, DRAW, draw, sample);

/**
 * The generator for augmentation draw `draw` of an image-level source's image `sample`:
 * `random(1, DRAW, draw, sample)`, a stream apart from the pixel-labelled split's (whose seed part is 0).
 */
export const imageLevelDrawRandom = (draw: number, sample: number): Random => random(1, DRAW, draw, sample);

/** A sample ready for batching. */
export interface ProcessedSample {
  readonly id: string;
  readonly height: number;
  readonly width: number;
  /** Normalized float CHW (RGB). */
  readonly image: Float32Array;
  /** Training ids, ignore = the class table's ignore index. */
  readonly labels: Int32Array;
  /** Multi-hot over K, when the dataset spec asks for image-level labels. */
  readonly imageLabels?: Uint8Array;
  /** Segment ids through the same rescale, crop, flip and padding as `labels` (padding: 0, void). */
  readonly panoptic?: PanopticLabels;
}

/** A test sample: the (possibly resized) inputs plus the original label map for evaluation. */
export interface TestSample extends ProcessedSample {
  readonly original: { readonly height: number; readonly width: number; readonly labels: Int32Array };
}

/** What the pipelines need to know about the dataset. */
export type PipelineDataset = Pick<Dataset, "classes" | "mapping" | "spec">;

/**
 * mmsegmentation's training pipeline on one sample: random rescale, random crop (cat max ratio), flip,
 * photometric distortion, then hiding of hidden classes, normalization and padding to the crop size.
 *
 * Image-level labels (if asked for) are taken before hiding: from the whole image for `"image"`, from the
 * final crop for `"crop"`.
 */
export const trainSample = (
  dataset: PipelineDataset,
  pipeline: TrainPipeline,
  raw: LabeledImage,
  rng: Random,
): Effect.Effect<ProcessedSample> =>
  Effect.gen(function* () {
    const { ignoreIndex } = dataset.classes;
    const k = dataset.classes.names.length;
    const [lo, hi] = pipeline.ratioRange;
    const ratio = lo + (hi - lo) * rng.uniform();
    const target = [Math.trunc(pipeline.scale[0] * ratio), Math.trunc(pipeline.scale[1] * ratio)] as const;
    const [h, w] = rescaleSize(raw.height, raw.width, target);
    const resizedLabels = resizeLabels(raw.labels, raw.height, raw.width, h, w);
    const box = chooseCrop(rng, resizedLabels, h, w, pipeline.cropSize, pipeline.catMaxRatio, k);
    const ch = box.y1 - box.y0, cw = box.x1 - box.x0;
    // Only the crop of the resized image is computed (libvips is demand-driven); cropping copies, so the
    // in-place steps below never touch the decoded sample.
    const image = yield* resizeCropRgb(raw.image, raw.height, raw.width, h, w, box);
    const labels = cropArray(resizedLabels, w, 1, box);
    // Segment ids take the labels' path (nearest resize, same box, same flip); no random draw of their own.
    const segmentIds = raw.panoptic &&
      cropArray(resizeLabels(raw.panoptic.segmentIds, raw.height, raw.width, h, w), w, 1, box);
    if (rng.uniform() < pipeline.flipProb) {
      flipHorizontal(image, ch, cw, 3);
      flipHorizontal(labels, ch, cw, 1);
      if (segmentIds) flipHorizontal(segmentIds, ch, cw, 1);
    }
    if (pipeline.photometric) applyDistortion(image, drawDistortion(rng));

    const mode = dataset.spec.imageLabels;
    const imageLabels = mode === "image"
      ? imageLabelsOf(raw.labels, k)
      : mode === "crop"
      ? imageLabelsOf(labels, k)
      : undefined;
    hideClasses(labels, dataset.mapping.hidden, ignoreIndex);
    const [oh, ow] = pipeline.cropSize;
    return {
      id: raw.id,
      height: oh,
      width: ow,
      image: normalizeRgb(image, ch, cw, pipeline.mean, pipeline.std, oh, ow, pipeline.padValue),
      labels: padLabels(labels, ch, cw, oh, ow, ignoreIndex),
      ...(imageLabels === undefined ? {} : { imageLabels }),
      ...(segmentIds === undefined ? {} : {
        panoptic: { segmentIds: padLabels(segmentIds, ch, cw, oh, ow, 0), segments: raw.panoptic!.segments },
      }),
    };
  });

/**
 * The test pipeline on one sample: optional keep-ratio resize (bilinear image, nearest labels), then
 * normalization. Hidden classes are not hidden here: evaluation scores every class.
 */
export const testSample = (
  dataset: PipelineDataset,
  pipeline: TestPipeline,
  raw: LabeledImage,
): Effect.Effect<TestSample> =>
  Effect.gen(function* () {
    const [h, w] = pipeline.resize === null
      ? [raw.height, raw.width]
      : rescaleSize(raw.height, raw.width, pipeline.resize);
    const image = yield* resizeRgb(raw.image, raw.height, raw.width, h, w);
    const labels = resizeLabels(raw.labels, raw.height, raw.width, h, w);
    const k = dataset.classes.names.length;
    return {
      id: raw.id,
      height: h,
      width: w,
      image: normalizeRgb(image, h, w, pipeline.mean, pipeline.std),
      labels,
      ...(dataset.spec.imageLabels === undefined ? {} : { imageLabels: imageLabelsOf(raw.labels, k) }),
      original: { height: raw.height, width: raw.width, labels: raw.labels },
    };
  });
