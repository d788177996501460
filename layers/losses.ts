/**
 * Losses, composed from primitives (their gradients come from the primitives' VJP rules).
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { divideByCount } from "../ir/count_normalized.ts";

/**
 * Mean softmax cross-entropy over the positions whose label is not `ignoreIndex`.
 * logits [b, c, ...] with the classes on `axis` (default 1; -1 for channel-last maps, where ONNX
 * Runtime's LogSoftmax is much faster), labels: logits' shape without that axis, integer. Positions
 * with ignored labels contribute nothing; if all are ignored the loss is 0 (not NaN), like PyTorch's
 * mean over no elements would not be.
 *
 * `reduction: "allPixels"` divides by every position instead, ignored ones included (mmsegmentation's
 * CrossEntropyLoss, which the official RankSeg code uses): the same loss × the share of labelled positions.
 */
export const softmaxCrossEntropy = (
  logits: Tensor,
  labels: Tensor,
  { ignoreIndex = 255, axis = 1, reduction = "labelledPixels", countedLabels }: {
    ignoreIndex?: number;
    axis?: number;
    reduction?: "labelledPixels" | "allPixels";
    /**
     * Labels with the same ignored positions as `labels`, computed from fewer inputs (the raw labels when a
     * selection covers every class): the count of labelled positions is taken from them, so that a
     * data-parallel plan computes it without the forward pass (ir/count_normalized.ts). Same values.
     */
    countedLabels?: Tensor;
  } = {},
): Tensor => {
  const a = o.axisOf(logits, axis);
  const valid = o.not(o.equal(labels, ignoreIndex));
  const safe = o.unsqueeze(o.where(valid, labels, 0), a);
  const picked = o.gatherElements(o.logSoftmax(logits, a), o.cast(safe, "int64"), a); // size 1 on `a`
  const weight = o.cast(o.unsqueeze(valid, a), logits.dtype);
  const sum = o.neg(o.sum(o.mul(picked, weight)));
  if (reduction === "allPixels") return o.div(sum, labels.shape.reduce((x, y) => x * y, 1));
  const counted = countedLabels ? o.cast(o.not(o.equal(countedLabels, ignoreIndex)), logits.dtype) : weight;
  return divideByCount(sum, o.sum(counted), "labelledPixels");
};

/** The number of entries of a tensor (b·k for [b, k] scores). */
const elements = (t: Tensor) => t.shape.reduce((a, b) => a * b, 1);

/**
 * Binary cross-entropy with logits, summed over classes and divided by b·k (RankSeg's normalization).
 * `known` (0/1, the logits' shape): only the entries where it is 1 are summed (an image's unknown classes
 * contribute nothing); the divisor stays b·k, so an all-ones `known` gives the unmasked loss.
 */
export const binaryCrossEntropy = (logits: Tensor, targets: Tensor, known?: Tensor): Tensor => {
  // log σ(x) = −softplus(−x), log(1 − σ(x)) = −softplus(x); softplus(x) = max(x, 0) + log(1 + e^−|x|)
  const softplus = (x: Tensor) => o.add(o.relu(x), o.log(o.add(o.exp(o.neg(o.abs(x))), 1)));
  const loss = o.add(o.mul(targets, softplus(o.neg(logits))), o.mul(o.sub(1, targets), softplus(logits)));
  return known ? o.div(o.sum(o.mul(loss, known)), elements(logits)) : o.mean(loss);
};

/**
 * Asymmetric loss (Ridnik et al.) as RankSeg's multi-label head uses it: p = σ(x), q = min(1 − p + clip, 1)
 * is the shifted probability of "absent"; L = −Σ [y·log p + (1 − y)·log q]·(1 − p_t)^(γ₊·y + γ₋·(1 − y))
 * with p_t = p for positives and q for negatives, summed over classes and divided by b·k. Log arguments
 * are clamped at `eps` (official default 1e-5); the focusing weights are differentiated unless
 * `detachFocusing` (the official `disable_torch_grad_focal_loss`, default off). `known` (0/1, the logits'
 * shape): only the entries where it is 1 are summed, as in `binaryCrossEntropy` (the divisor stays b·k).
 */
export const asymmetricLoss = (
  logits: Tensor,
  targets: Tensor,
  { gammaPos = 0, gammaNeg = 2, clip = 0.05, eps = 1e-5, detachFocusing = false } = {},
  known?: Tensor,
): Tensor => {
  const p = o.sigmoid(logits);
  const q = clip > 0 ? o.minimum(o.add(o.sub(1, p), clip), 1) : o.sub(1, p);
  const negTargets = o.sub(1, targets);
  let loss = o.add(o.mul(targets, o.log(o.maximum(p, eps))), o.mul(negTargets, o.log(o.maximum(q, eps))));
  if (gammaPos > 0 || gammaNeg > 0) {
    const pt = o.add(o.mul(targets, p), o.mul(negTargets, q));
    const gamma = o.add(o.mul(targets, gammaPos), o.mul(negTargets, gammaNeg));
    const weight = o.pow(o.sub(1, pt), gamma);
    loss = o.mul(loss, detachFocusing ? o.stopGradient(weight) : weight);
  }
  if (known) loss = o.mul(loss, known);
  return o.div(o.neg(o.sum(loss)), elements(logits));
};
