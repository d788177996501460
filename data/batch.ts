/**
 * Batches: what loader streams emit, and collation of processed samples into one.
 */
import type { ProcessedSample, TestSample } from "./pipeline.ts";
import type { PanopticLabels } from "./dataset.ts";

/** Where a batch sits in the training order. */
export interface Position {
  readonly epoch: number;
  /** Index of the batch's first sample within the epoch's (shuffled) order. */
  readonly index: number;
}

/** A batch of samples of one size. */
export interface Batch {
  /** [B, 3, H, W], normalized `(x - mean) / std`, NCHW, RGB. */
  readonly images: Float32Array;
  /** [B, H, W], training ids, ignore = the class table's ignore index. */
  readonly labels: Int32Array;
  readonly batchSize: number;
  readonly height: number;
  readonly width: number;
  /** Sample ids (file stems). */
  readonly ids: readonly string[];
  readonly position: Position;
  /** [B, K] multi-hot image-level labels, when the dataset spec asks for them. */
  readonly imageLabels?: Uint8Array;
  /**
   * [B] 1 = the labels are pixel labels, 0 = an image-level image (its labels are all ignore); set by
   * the LarvSeg loader that mixes both kinds (absent = every image is pixel-labelled).
   */
  readonly pixelLabelled?: Uint8Array;
  /**
   * [B, K] 1 = the image's label for the class is known (a positive or a negative), 0 = unknown: the
   * unlisted classes of a `partial` image-level source's image. Set by the mixed loader.
   */
  readonly imageLabelsKnown?: Uint8Array;
  /** Per sample: segment ids [H, W] and segments, when the loader was asked for panoptic targets. */
  readonly panoptic?: readonly PanopticLabels[];
}

/** A batch without its images: the labels and targets a model kind feeds (`Training.feeds`). */
export type BatchLabels = Omit<Batch, "images">;

/** One backbone output of a whole batch, float32, [B, ...the per-image shape]. */
export interface FeatureArray {
  readonly data: Float32Array;
  readonly shape: readonly number[];
}

/**
 * A batch of a frozen backbone's cached outputs in place of images (`data/feature_cache.ts`): the
 * feature graph's outputs in order (`features.0`, …), with the labels and targets of the same draws.
 */
export interface FeatureBatch extends BatchLabels {
  readonly features: readonly FeatureArray[];
}

/** A test batch (batch size 1): the inputs plus the original-resolution label map for evaluation. */
export interface TestBatch extends Batch {
  readonly original: { readonly height: number; readonly width: number; readonly labels: Int32Array };
}

/**
 * Stacks samples of equal size into a batch.
 *
 * Gotcha: all samples must share height and width (the training pipeline pads to the crop size); this is
 * an internal invariant, so a violation throws.
 */
export const collate = (
  samples: readonly ProcessedSample[],
  position: Position,
  numClasses: number,
): Batch => {
  const { height, width } = samples[0];
  const plane = height * width;
  const images = new Float32Array(samples.length * 3 * plane);
  const labels = new Int32Array(samples.length * plane);
  const withImageLabels = samples[0].imageLabels !== undefined;
  const imageLabels = withImageLabels ? new Uint8Array(samples.length * numClasses) : undefined;
  samples.forEach((s, b) => {
    if (s.height !== height || s.width !== width) {
      throw new Error(`collate: sample ${s.id} is ${s.width}x${s.height}, batch is ${width}x${height}`);
    }
    images.set(s.image, b * 3 * plane);
    labels.set(s.labels, b * plane);
    if (imageLabels !== undefined) imageLabels.set(s.imageLabels!, b * numClasses);
  });
  return {
    images,
    labels,
    batchSize: samples.length,
    height,
    width,
    ids: samples.map((s) => s.id),
    position,
    ...(imageLabels === undefined ? {} : { imageLabels }),
    ...(samples[0].panoptic === undefined ? {} : { panoptic: samples.map((s) => s.panoptic!) }),
  };
};

/** A test sample as a batch of one; its arrays are used as they are, not copied. */
export const testBatch = (s: TestSample, index: number): TestBatch => ({
  images: s.image,
  labels: s.labels,
  batchSize: 1,
  height: s.height,
  width: s.width,
  ids: [s.id],
  position: { epoch: 0, index },
  ...(s.imageLabels === undefined ? {} : { imageLabels: s.imageLabels }),
  original: s.original,
});
