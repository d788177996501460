/**
 * Semantic segmentation metrics with mmsegmentation's `IoUMetric` semantics.
 *
 * Areas are summed over the whole dataset first and divided once at the end (dataset-level IoU), which
 * is not the same as averaging per-image IoUs: a class that is small in one image and large in another
 * is weighted by its pixels, not by its image count.
 *
 * Per image (mmseg `intersect_and_union`): pixels whose label is the ignore index are dropped; label or
 * prediction values outside 0..K-1 fall outside every histogram bin and are not counted (a prediction
 * of 255 on a labelled pixel is simply a miss for that pixel's class).
 *
 * Final (mmseg `total_area_to_metrics`): IoU_c = intersect_c / union_c and Acc_c = intersect_c /
 * label_c, NaN when the denominator is 0; mIoU and mAcc are NaN-skipping means; aAcc = Σ intersect /
 * Σ label. Values are fractions in [0, 1] (mmseg multiplies by 100 only for printing).
 */
import { metricsInputError } from "./metrics_error.ts";

/** Per-class pixel counts, summed over the images seen so far. */
export interface AreaCounts {
  readonly intersect: Float64Array;
  readonly union: Float64Array;
  readonly predArea: Float64Array;
  readonly labelArea: Float64Array;
}

export interface SegmentationSummary {
  /** intersect / union per class; NaN where the class is absent from both prediction and label. */
  readonly iou: Float64Array;
  /** intersect / label area per class; NaN where the class is absent from the label. */
  readonly acc: Float64Array;
  readonly mIoU: number;
  readonly mAcc: number;
  readonly aAcc: number;
  /**
   * From an accumulator: how many images were added, and in how many of them each class is labelled (the
   * multi-label targets of those images). A class in every image has an average precision of 100
   * whatever the scores, which the report explains.
   */
  readonly images?: number;
  readonly imagesPerClass?: Float64Array;
}

export const emptyAreaCounts = (numClasses: number): AreaCounts => ({
  intersect: new Float64Array(numClasses),
  union: new Float64Array(numClasses),
  predArea: new Float64Array(numClasses),
  labelArea: new Float64Array(numClasses),
});

const checkClassCount = (numClasses: number) => {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw metricsInputError("segmentation", "numClasses", `must be a positive integer, got ${numClasses}`);
  }
};

/**
 * Adds one image's areas into `into` (mutating it; counts are plain sums, so order does not matter) and
 * returns the image's labelled pixels per class.
 */
export const addIntersectAndUnion = (
  into: AreaCounts,
  pred: Int32Array | Uint8Array,
  label: Int32Array | Uint8Array,
  ignoreIndex: number,
): Float64Array => {
  const numClasses = into.intersect.length;
  if (pred.length !== label.length) {
    throw metricsInputError(
      "segmentation",
      "pred",
      `has ${pred.length} pixels but label has ${label.length}`,
    );
  }
  const { intersect, predArea, labelArea, union } = into;
  // Local integer histograms: exact counts, converted once per image.
  const hitsI = new Float64Array(numClasses);
  const hitsP = new Float64Array(numClasses);
  const hitsL = new Float64Array(numClasses);
  for (let i = 0; i < label.length; i++) {
    const l = label[i];
    if (l === ignoreIndex) continue;
    const p = pred[i];
    const labelOk = l >= 0 && l < numClasses;
    if (labelOk) hitsL[l]++;
    if (p >= 0 && p < numClasses) {
      hitsP[p]++;
      if (p === l) hitsI[p]++;
    }
  }
  for (let c = 0; c < numClasses; c++) {
    intersect[c] += hitsI[c];
    predArea[c] += hitsP[c];
    labelArea[c] += hitsL[c];
    union[c] += hitsP[c] + hitsL[c] - hitsI[c];
  }
  return hitsL;
};

/** One image's areas (mmseg `intersect_and_union`). */
export const intersectAndUnion = (
  pred: Int32Array | Uint8Array,
  label: Int32Array | Uint8Array,
  numClasses: number,
  ignoreIndex: number,
): AreaCounts => {
  checkClassCount(numClasses);
  const counts = emptyAreaCounts(numClasses);
  addIntersectAndUnion(counts, pred, label, ignoreIndex);
  return counts;
};

/** NaN-skipping mean (numpy `nanmean`); NaN when every entry is NaN. */
export const nanMean = (values: ArrayLike<number>): number => {
  let sum = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isNaN(values[i])) {
      sum += values[i];
      n++;
    }
  }
  return n === 0 ? NaN : sum / n;
};

const safeDivide = (num: number, den: number) => (den === 0 ? NaN : num / den);

/** Final metrics from dataset-level areas (mmseg `total_area_to_metrics` + `nanmean`). */
export const summarizeAreas = (counts: AreaCounts): SegmentationSummary => {
  const k = counts.intersect.length;
  const iou = new Float64Array(k);
  const acc = new Float64Array(k);
  let totalIntersect = 0;
  let totalLabel = 0;
  for (let c = 0; c < k; c++) {
    iou[c] = safeDivide(counts.intersect[c], counts.union[c]);
    acc[c] = safeDivide(counts.intersect[c], counts.labelArea[c]);
    totalIntersect += counts.intersect[c];
    totalLabel += counts.labelArea[c];
  }
  return { iou, acc, mIoU: nanMean(iou), mAcc: nanMean(acc), aAcc: safeDivide(totalIntersect, totalLabel) };
};

/** A streaming dataset-level accumulator: `add` each image, `summary` at any time. */
export interface SegmentationAccumulator {
  readonly numClasses: number;
  readonly ignoreIndex: number;
  readonly add: (pred: Int32Array | Uint8Array, label: Int32Array | Uint8Array) => void;
  /** A copy of the areas so far (e.g. to merge accumulators from parallel workers). */
  readonly counts: () => AreaCounts;
  readonly imageCount: () => number;
  readonly summary: () => SegmentationSummary;
}

export const segmentationAccumulator = (
  { numClasses, ignoreIndex }: { numClasses: number; ignoreIndex: number },
): SegmentationAccumulator => {
  checkClassCount(numClasses);
  const totals = emptyAreaCounts(numClasses);
  const imagesPerClass = new Float64Array(numClasses);
  let images = 0;
  return {
    numClasses,
    ignoreIndex,
    add: (pred, label) => {
      const labelled = addIntersectAndUnion(totals, pred, label, ignoreIndex);
      for (let c = 0; c < numClasses; c++) if (labelled[c] > 0) imagesPerClass[c]++;
      images++;
    },
    counts: () => mergeAreaCounts(totals),
    imageCount: () => images,
    summary: () => ({ ...summarizeAreas(totals), images, imagesPerClass: imagesPerClass.slice() }),
  };
};

/** Element-wise sum of area counts (all must have the same class count). */
export const mergeAreaCounts = (...parts: readonly AreaCounts[]): AreaCounts => {
  const k = parts[0]?.intersect.length ?? 0;
  const out = emptyAreaCounts(k);
  for (const part of parts) {
    if (part.intersect.length !== k) {
      throw metricsInputError(
        "segmentation",
        "counts",
        `class counts differ: ${part.intersect.length} vs ${k}`,
      );
    }
    for (let c = 0; c < k; c++) {
      out.intersect[c] += part.intersect[c];
      out.union[c] += part.union[c];
      out.predArea[c] += part.predArea[c];
      out.labelArea[c] += part.labelArea[c];
    }
  }
  return out;
};
