/**
 * The losses of a panoptic mask transformer (kMaX-DeepLab's forms), over symbolic tensors.
 *
 * Layouts (b images, N queries, M padded ground-truth masks, P pixels, K classes + void at index K):
 * mask logits [b, N, P], class logits [b, N, K + 1], ground-truth masks [b, M, P] (0/1, disjoint; a pixel
 * in none is void or crowd), ground-truth classes [b, M] (int64, padding = K), the matching [b, N, M]
 * (1 where query n took mask m; from the Hungarian host stage, `host/matching_stage.ts`).
 *
 * Predicted masks are a softmax over queries per pixel, restricted to labelled pixels. Similarities:
 * dice(n, m) = 2·|p_n ∩ g_m| / (|p_n| + |g_m|) and p(m's class | n) (softmax over K + 1 columns, the
 * void column dropped). The matching minimizes Σ −dice × class probability. kMaX's normalizations are
 * kept (per image, then the batch mean), with one simplification: kMaX divides each image's sum by its
 * count of non-zero loss terms; here by the count of terms that take part (N queries, labelled pixels),
 * which differs only when a term is exactly 0.
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";

/** kMaX's focal α with γ = 0: matched queries' class term × α, unmatched (void) × (1 − α). */
export const PQ_ALPHA = 0.75;
/** Lower bound of the dynamic loss weights (kMaX's eos_coef). */
const MIN_WEIGHT = 1e-5;

/** One-hot rows of `depth`; an index outside 0..depth−1 (padding, ignore) gives a row of zeros. */
export const oneHotOrZero = (indices: Tensor, depth: number): Tensor => {
  const inside = o.and(o.greaterOrEqual(indices, 0), o.less(indices, depth));
  // ONNX OneHot counts negative indices from the end; map every outsider to depth, then drop that column.
  const hot = o.oneHot(o.where(inside, indices, depth), depth + 1, "float32");
  return o.slice(hot, [indices.rank], [0], [depth]);
};

/** Ground-truth masks [b, M, P] from per-pixel mask ids [b, P] (int64; id ≥ M or < 0: no mask). */
export const targetMasks = (maskIds: Tensor, maxMasks: number): Tensor =>
  o.mT(oneHotOrZero(maskIds, maxMasks));

/** Labelled pixels [b, 1, P]: 1 where some ground-truth mask covers the pixel. */
const labelledPixels = (gtMasks: Tensor): Tensor => o.sum(gtMasks, [1], true);

/** Mask probabilities [b, N, P]: softmax over queries per pixel, zero on unlabelled pixels. */
const maskProbabilities = (maskLogits: Tensor, gtMasks: Tensor): Tensor =>
  o.mul(o.softmax(maskLogits, 1), labelledPixels(gtMasks));

/** dice(n, m) [b, N, M] between predicted masks [b, N, P] and ground truth [b, M, P] (kMaX's ε = 1e-5). */
const diceSimilarity = (probs: Tensor, gtMasks: Tensor): Tensor => {
  const intersection = o.matmul(probs, o.mT(gtMasks)); // [b, N, M]
  const predicted = o.sum(probs, [2], true); // [b, N, 1]
  const truth = o.mT(o.sum(gtMasks, [2], true)); // [b, 1, M]
  return o.div(intersection, o.add(o.div(o.add(predicted, truth), 2), 1e-5));
};

/** p(m's class | n) [b, N, M]: class probabilities without renormalizing away the void column. */
const classSimilarity = (classLogits: Tensor, gtClasses: Tensor): Tensor => {
  const k = classLogits.shape[2] - 1;
  const probs = o.slice(o.softmax(classLogits, -1), [2], [0], [k]); // [b, N, K]
  return o.matmul(probs, o.mT(oneHotOrZero(gtClasses, k))); // padding (class K) → 0
};

/** The Hungarian costs [b, N, M] = −dice × p(class): lower is a better (query, mask) pair. */
export const matchingCosts = (
  maskLogits: Tensor,
  classLogits: Tensor,
  gtMasks: Tensor,
  gtClasses: Tensor,
): Tensor =>
  o.neg(
    o.mul(
      diceSimilarity(maskProbabilities(maskLogits, gtMasks), gtMasks),
      classSimilarity(classLogits, gtClasses),
    ),
  );

/** Hard class targets [b, N, K + 1]: the matched mask's class, void (K) for an unmatched query. */
export const classTargets = (matching: Tensor, gtClasses: Tensor, classes: number): Tensor => {
  const matchedHot = o.matmul(matching, oneHotOrZero(gtClasses, classes + 1)); // [b, N, K + 1]
  const matched = o.sum(matching, [2], true); // [b, N, 1]
  const voidHot = o.constant(
    matching.graph,
    Float32Array.from({ length: classes + 1 }, (_, c) => c === classes ? 1 : 0),
    [classes + 1],
  );
  return o.add(matchedHot, o.mul(o.sub(1, matched), voidHot));
};

export interface PqStyleInputs {
  readonly maskLogits: Tensor;
  readonly classLogits: Tensor;
  readonly gtMasks: Tensor;
  readonly gtClasses: Tensor;
  readonly matching: Tensor;
  /** Soft class targets [b, N, K + 1] (ReClass); default: `classTargets`. */
  readonly classTargets?: Tensor;
}

/**
 * kMaX's PQ-style loss as its two terms (the spec's weight, 3.0, multiplies both).
 *
 * class term: per query, cross-entropy against its class target, weighted by α·dice(n, its mask) when
 * matched and by (1 − α)·(share of its predicted mask on unlabelled pixels) when not (kMaX: an
 * unmatched query that covers void is pushed to void hardest); Σ over queries / N.
 * dice term: per matched query, (1 − smoothed dice with its mask) weighted by its probability of that
 * mask's class; Σ over queries × α / N. Both weights are constants (stop-gradient) and at least 1e-5.
 */
export const pqStyleLoss = (x: PqStyleInputs): { classTerm: Tensor; diceTerm: Tensor } => {
  const [, n] = x.maskLogits.shape;
  const k = x.classLogits.shape[2] - 1;
  const probs = maskProbabilities(x.maskLogits, x.gtMasks);
  const matched = o.sum(x.matching, [2]); // [b, N]
  const pick = (pairs: Tensor) => o.stopGradient(o.sum(o.mul(pairs, x.matching), [2])); // [b, N]
  const matchedDice = pick(diceSimilarity(probs, x.gtMasks));
  const matchedClassProb = pick(classSimilarity(x.classLogits, x.gtClasses));
  const allProbs = o.softmax(x.maskLogits, 1);
  const onVoid = o.sum(o.mul(allProbs, o.sub(1, labelledPixels(x.gtMasks))), [2]);
  const voidRatio = o.stopGradient(o.div(onVoid, o.add(o.sum(allProbs, [2]), 1e-5)));

  const targets = x.classTargets ?? classTargets(x.matching, x.gtClasses, k);
  const crossEntropy = o.neg(o.sum(o.mul(targets, o.logSoftmax(x.classLogits, -1)), [2])); // [b, N]
  const classWeight = o.add(
    o.mul(matched, o.mul(o.maximum(matchedDice, MIN_WEIGHT), PQ_ALPHA)),
    o.mul(o.sub(1, matched), o.mul(o.maximum(voidRatio, MIN_WEIGHT), 1 - PQ_ALPHA)),
  );
  const classTerm = o.mean(o.div(o.sum(o.mul(crossEntropy, classWeight), [1]), n));

  // Smoothed dice (+1 above and below) between each query and its matched mask.
  const assigned = o.matmul(x.matching, x.gtMasks); // [b, N, P]
  const overlap = o.sum(o.mul(probs, assigned), [2]);
  const dice = o.div(o.add(o.mul(overlap, 2), 1), o.add(o.add(o.sum(probs, [2]), o.sum(assigned, [2])), 1));
  const diceWeight = o.mul(matched, o.maximum(matchedClassProb, MIN_WEIGHT));
  const diceTerm = o.mean(o.mul(o.sum(o.mul(o.sub(1, dice), diceWeight), [1]), PQ_ALPHA / n));
  return { classTerm, diceTerm };
};

/**
 * Mask-ID cross-entropy (kMaX weight 0.3): each labelled pixel classifies over the N queries, its target
 * the query matched to its mask; pixels of unmatched masks and unlabelled pixels take no part. Per image
 * the mean over those pixels, then the batch mean.
 */
export const maskIdCrossEntropy = (maskLogits: Tensor, gtMasks: Tensor, matching: Tensor): Tensor => {
  const target = o.matmul(matching, gtMasks); // [b, N, P]: 1 at the pixel's query
  const pixelLoss = o.neg(o.sum(o.mul(target, o.logSoftmax(maskLogits, 1)), [1])); // [b, P]
  const counted = o.sum(target, [1, 2]); // [b]
  return o.mean(o.div(o.sum(pixelLoss, [1]), o.maximum(counted, 1)));
};

/**
 * Auxiliary semantic cross-entropy (kMaX weight 1.0; without kMaX's pixel sampling): logits [b, K, P],
 * labels [b, P] int64 with `ignoreIndex` for unlabelled pixels; per image the mean over labelled pixels,
 * then the batch mean.
 */
export const auxSemanticCrossEntropy = (logits: Tensor, labels: Tensor, ignoreIndex = 255): Tensor => {
  const k = logits.shape[1];
  const hot = o.mT(oneHotOrZero(o.where(o.equal(labels, ignoreIndex), k, labels), k)); // [b, K, P]
  const pixelLoss = o.neg(o.sum(o.mul(hot, o.logSoftmax(logits, 1)), [1])); // [b, P]
  const counted = o.sum(hot, [1, 2]);
  return o.mean(o.div(o.sum(pixelLoss, [1]), o.maximum(counted, 1)));
};

/**
 * Diagnostics of one batch's matching (scalars, no gradient; what `grid panoptic diagnose` prints):
 * how confident the class head is on matched and on unmatched queries, and how strongly the PQ-style
 * class term pulls on each (its weights). Means over the queries of the batch they concern (NaN-free:
 * an empty set gives 0).
 */
export const matchingDiagnostics = (x: Omit<PqStyleInputs, "classTargets">): Record<string, Tensor> => {
  const [b, n] = x.maskLogits.shape;
  const k = x.classLogits.shape[2] - 1;
  const probs = maskProbabilities(x.maskLogits, x.gtMasks);
  const matched = o.sum(x.matching, [2]); // [b, N]
  const unmatched = o.sub(1, matched);
  const pick = (pairs: Tensor) => o.sum(o.mul(pairs, x.matching), [2]);
  const classProbs = o.softmax(x.classLogits, -1); // [b, N, K + 1]
  const voidProb = o.reshape(o.slice(classProbs, [2], [k], [k + 1]), [b, n]);
  const confidence = o.max(o.slice(classProbs, [2], [0], [k]), [2]); // best non-void class
  const matchedDice = pick(diceSimilarity(probs, x.gtMasks));
  const allProbs = o.softmax(x.maskLogits, 1);
  const unlabelled = o.sub(1, labelledPixels(x.gtMasks)); // [b, 1, P]
  const voidRatio = o.div(o.sum(o.mul(allProbs, unlabelled), [2]), o.add(o.sum(allProbs, [2]), 1e-5));
  const over = (v: Tensor, set: Tensor) => o.div(o.sum(o.mul(v, set)), o.maximum(o.sum(set), 1));
  return {
    matchedShare: o.div(o.sum(matched), b * n),
    voidPixelShare: o.mean(unlabelled),
    matchedClassProb: over(pick(classSimilarity(x.classLogits, x.gtClasses)), matched),
    matchedConfidence: over(confidence, matched),
    matchedVoidProb: over(voidProb, matched),
    matchedDice: over(matchedDice, matched),
    matchedClassWeight: over(o.mul(o.maximum(matchedDice, MIN_WEIGHT), PQ_ALPHA), matched),
    unmatchedVoidProb: over(voidProb, unmatched),
    unmatchedConfidence: over(confidence, unmatched),
    unmatchedVoidRatio: over(voidRatio, unmatched),
    unmatchedClassWeight: over(o.mul(o.maximum(voidRatio, MIN_WEIGHT), 1 - PQ_ALPHA), unmatched),
    confidentShare: o.mean(o.cast(o.greaterOrEqual(confidence, 0.5), "float32")),
  };
};
