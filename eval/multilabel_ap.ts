/**
 * Multi-label mean average precision over a dataset.
 *
 * AP for one class is the non-interpolated average precision: rank the dataset's images by that
 * class's score, descending, and average the precision at the rank of every positive image:
 *
 *     AP = (1 / P) · Σ_{positive at rank r} (positives in ranks 1..r) / r
 *
 * Tie rule: images with equal scores keep the order in which they were added (a stable sort), so an
 * earlier image ranks above a later one. With distinct scores this equals scikit-learn's
 * `average_precision_score`; with ties scikit-learn instead treats the tied group as one threshold, and
 * the two can differ.
 *
 * mAP is the mean AP over classes with at least one positive in the dataset (classes with none are
 * skipped, not counted as 0), multiplied by 100 as mmpretrain reports it.
 */
import { metricsInputError } from "./metrics_error.ts";

/** AP of one class (fraction in [0, 1]); NaN when there is no positive. Targets > 0 count as positive. */
export const averagePrecision = (scores: ArrayLike<number>, targets: ArrayLike<number>): number => {
  if (scores.length !== targets.length) {
    throw metricsInputError(
      "averagePrecision",
      "scores",
      `has ${scores.length} entries but targets has ${targets.length}`,
    );
  }
  const order = Array.from({ length: scores.length }, (_, i) => i);
  // Array.prototype.sort is stable, which is the tie rule stated above.
  order.sort((a, b) => scores[b] - scores[a]);
  let positives = 0;
  let precisionSum = 0;
  for (let rank = 0; rank < order.length; rank++) {
    if (targets[order[rank]] > 0) {
      positives++;
      precisionSum += positives / (rank + 1);
    }
  }
  return positives === 0 ? NaN : precisionSum / positives;
};

export interface MultilabelSummary {
  /** AP per class as a fraction; NaN for classes without a positive. */
  readonly ap: Float64Array;
  /** Mean of the non-NaN APs × 100; NaN when no class has a positive. */
  readonly mAP: number;
}

export interface MultilabelAccumulator {
  readonly numClasses: number;
  /** One image: a score per class and a multi-hot target per class. */
  readonly add: (scores: ArrayLike<number>, targets: ArrayLike<number>) => void;
  readonly imageCount: () => number;
  readonly summary: () => MultilabelSummary;
}

export const multilabelAccumulator = ({ numClasses }: { numClasses: number }): MultilabelAccumulator => {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw metricsInputError("multilabel", "numClasses", `must be a positive integer, got ${numClasses}`);
  }
  // Row-major [image][class], grown by doubling so adding an image is amortized O(K).
  let scores = new Float64Array(numClasses * 64);
  let targets = new Uint8Array(numClasses * 64);
  let images = 0;
  const add = (imageScores: ArrayLike<number>, imageTargets: ArrayLike<number>) => {
    if (imageScores.length !== numClasses) {
      throw metricsInputError(
        "multilabel",
        "scores",
        `has ${imageScores.length} entries, expected ${numClasses}`,
      );
    }
    if (imageTargets.length !== numClasses) {
      throw metricsInputError(
        "multilabel",
        "targets",
        `has ${imageTargets.length} entries, expected ${numClasses}`,
      );
    }
    for (let c = 0; c < numClasses; c++) {
      if (Number.isNaN(imageScores[c])) {
        throw metricsInputError("multilabel", "scores", `class ${c} of image ${images} is NaN`);
      }
    }
    if ((images + 1) * numClasses > scores.length) {
      const grownScores = new Float64Array(scores.length * 2);
      grownScores.set(scores);
      scores = grownScores;
      const grownTargets = new Uint8Array(targets.length * 2);
      grownTargets.set(targets);
      targets = grownTargets;
    }
    const base = images * numClasses;
    for (let c = 0; c < numClasses; c++) {
      scores[base + c] = imageScores[c];
      targets[base + c] = imageTargets[c] > 0 ? 1 : 0;
    }
    images++;
  };
  const summary = (): MultilabelSummary => {
    const ap = new Float64Array(numClasses);
    const columnScores = new Float64Array(images);
    const columnTargets = new Uint8Array(images);
    let sum = 0;
    let counted = 0;
    for (let c = 0; c < numClasses; c++) {
      for (let i = 0; i < images; i++) {
        columnScores[i] = scores[i * numClasses + c];
        columnTargets[i] = targets[i * numClasses + c];
      }
      ap[c] = averagePrecision(columnScores, columnTargets);
      if (!Number.isNaN(ap[c])) {
        sum += ap[c];
        counted++;
      }
    }
    return { ap, mAP: counted === 0 ? NaN : (100 * sum) / counted };
  };
  return { numClasses, add, imageCount: () => images, summary };
};
