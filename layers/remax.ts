/**
 * ReMaX's relaxations of mask-transformer training ("Relaxing for Better Training on Efficient Panoptic
 * Segmentation"); both are training-only, so the inference graph is plain kMaX. Layouts as in
 * `panoptic_losses.ts`: mask logits [b, N, P], class logits [b, N, K + 1], semantic logits [b, K, P].
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { classTargets, oneHotOrZero } from "./panoptic_losses.ts";

/**
 * ReMask: m̃ = m + m ⊙ (p_classᵀ · stopgrad(p_semantic)), each query's mask logits relaxed by the
 * semantic prediction of the classes it predicts, m̃ replacing m for matching and the mask losses; the
 * semantic head gets no gradient through it. p_class is the class softmax over K + 1 with the void column
 * dropped (the matching cost's class probability), p_semantic the per-pixel softmax over the K classes,
 * so the gate Σ_k p_class[n, k]·p_semantic[k, p] is the probability that pixel p's class is query n's:
 * it lies in [0, 1] and m̃ between m and 2m.
 *
 * Why softmaxes, not the sigmoids of the notation "σ(class)ᵀ·σ(semantic)": with sigmoids the gate is a
 * sum of K terms, ≈ K/4 at initialization (34 for coco133's 133 classes), so training fits m̃ and the
 * raw m the inference graph uses shrinks by that factor. Measured on the coco133 grid (150 steps): the
 * sigmoid form's raw mask logits had std 0.13 against the baseline's 2.4–3.7 on val images, every
 * pixel's softmax over queries stayed near uniform (max 0.04–0.05 < the 0.4 mask threshold), and PQ was
 * 0.00 on every seed. A probability gate keeps the relaxation a bounded re-weighting.
 */
export const reMask = (maskLogits: Tensor, classLogits: Tensor, semanticLogits: Tensor): Tensor =>
  o.add(maskLogits, o.mul(maskLogits, reMaskGate(classLogits, semanticLogits)));

/** ReMask's gate [b, N, P]: Σ_k p_class[n, k]·stopgrad(p_semantic[k, p]), in [0, 1]. */
export const reMaskGate = (classLogits: Tensor, semanticLogits: Tensor): Tensor => {
  const k = semanticLogits.shape[1];
  const classProbs = o.slice(o.softmax(classLogits, -1), [2], [0], [k]); // [b, N, K]
  const semantic = o.stopGradient(o.softmax(semanticLogits, 1)); // [b, K, P]
  return o.matmul(classProbs, semantic);
};

/** ReClass's η (the smoothing strength). */
export const RECLASS_ETA = 0.1;

/**
 * ReClass soft class targets [b, N, K + 1]: for a matched query n with class y_n,
 * w_{n,c} = Σ_p σ(m_{n,p})·[gt_p = c] / |gt = c| (how much of each ground-truth class region its mask
 * covers) and ỹ_n = η·w_n + (1 − η·w_n) ⊙ onehot(y_n) — 1 at y_n, η·w_{n,c} elsewhere, void 0 (not
 * renormalized: the form of a published re-implementation; the paper's exact normalization is not
 * public). Unmatched queries keep the void target. The targets are constants (no gradient).
 * `labels` [b, P] are the per-pixel training classes, `ignoreIndex` where unlabelled.
 */
export const reClassTargets = (
  maskLogits: Tensor,
  labels: Tensor,
  matching: Tensor,
  gtClasses: Tensor,
  { eta = RECLASS_ETA, ignoreIndex = 255, classes }: { eta?: number; ignoreIndex?: number; classes: number },
): Tensor => {
  const [b, n] = maskLogits.shape;
  const regions = oneHotOrZero(o.where(o.equal(labels, ignoreIndex), classes, labels), classes); // [b, P, K]
  const area = o.maximum(o.sum(regions, [1], true), 1); // [b, 1, K]
  const covered = o.div(o.matmul(o.sigmoid(maskLogits), regions), area); // [b, N, K]
  const matched = o.sum(matching, [2], true); // [b, N, 1]
  const w = o.mul(o.concat([covered, o.zeros(maskLogits.graph, [b, n, 1])], 2), matched); // void column 0
  const hard = classTargets(matching, gtClasses, classes);
  const soft = o.mul(w, eta);
  return o.stopGradient(o.add(soft, o.mul(o.sub(1, soft), hard)));
};
