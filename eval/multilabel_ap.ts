/**
 * Multi-label mean average precision over a dataset.
 *
 * AP for one class is scikit-learn's `average_precision_score`: rank the dataset's images by that class's
 * score, descending, take one threshold per distinct score, and sum the precision at each threshold
 * weighted by the recall it adds:
 *
 *     AP = Σ_n (R_n − R_{n−1}) · P_n
 *
 * Tie rule: images with equal scores form one threshold (they enter together), so the result does not
 * depend on the order in which images were added. With distinct scores this is the mean precision at
 * the rank of every positive image.
 *
 * mAP is the mean AP over classes with at least one positive in the dataset (classes with none are
 * skipped, not counted as 0), multiplied by 100 as mmpretrain reports it.
 *
 * recall@κ is per image, the measure of what RankSeg's top-κ selection keeps: the share of the image's
 * ground-truth classes among the κ classes it scores highest, |GT ∩ top-κ| / |GT|, averaged over the images
 * with at least one ground-truth class, ×100. Top-κ breaks ties towards the lower class id, as ONNX TopK
 * (the selection's op) does.
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
  order.sort((a, b) => scores[b] - scores[a]);
  let total = 0;
  for (let i = 0; i < targets.length; i++) if (targets[i] > 0) total++;
  if (total === 0) return NaN;
  // Walk the tied groups: every image of a group enters at the group's threshold.
  let positives = 0;
  let sum = 0;
  for (let start = 0; start < order.length;) {
    let end = start;
    let groupPositives = 0;
    while (end < order.length && scores[order[end]] === scores[order[start]]) {
      if (targets[order[end]] > 0) groupPositives++;
      end++;
    }
    positives += groupPositives;
    // Recall rises by groupPositives / total at precision positives / end.
    sum += groupPositives * (positives / end);
    start = end;
  }
  return sum / total;
};

/**
 * The κ classes of highest score, ties to the lower class id (ONNX TopK's order), as a 0/1 mask [K].
 */
export const topKMask = (scores: ArrayLike<number>, k: number): Uint8Array => {
  const order = Array.from({ length: scores.length }, (_, c) => c);
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  const mask = new Uint8Array(scores.length);
  for (const c of order.slice(0, k)) mask[c] = 1;
  return mask;
};

/**
 * One image's recall@κ: the share of its ground-truth classes (targets > 0) among its top-κ scores, as a
 * fraction; NaN when the image has no ground-truth class.
 */
export const imageRecallAtK = (scores: ArrayLike<number>, targets: ArrayLike<number>, k: number): number => {
  if (scores.length !== targets.length) {
    throw metricsInputError(
      "recallAtK",
      "scores",
      `has ${scores.length} entries but targets has ${targets.length}`,
    );
  }
  if (!Number.isInteger(k) || k < 1) {
    throw metricsInputError("recallAtK", "k", `must be a positive integer, got ${k}`);
  }
  const top = topKMask(scores, k);
  let positives = 0, kept = 0;
  for (let c = 0; c < targets.length; c++) {
    if (targets[c] > 0) {
      positives++;
      kept += top[c];
    }
  }
  return positives === 0 ? NaN : kept / positives;
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
  /** recall@κ ×100 over the images with a ground-truth class (module doc); NaN when none has one. */
  readonly recallAt: (k: number) => number;
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
  const recallAt = (k: number): number => {
    let sum = 0, counted = 0;
    for (let i = 0; i < images; i++) {
      const row = (a: Float64Array | Uint8Array) => a.subarray(i * numClasses, (i + 1) * numClasses);
      const r = imageRecallAtK(row(scores), row(targets), k);
      if (!Number.isNaN(r)) {
        sum += r;
        counted++;
      }
    }
    return counted === 0 ? NaN : (100 * sum) / counted;
  };
  return { numClasses, add, imageCount: () => images, summary, recallAt };
};
