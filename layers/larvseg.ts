/**
 * LarvSeg's training losses over image-level labels (DESIGN.md, "LarvSeg facts"): the image-level loss
 * and the category-wise attentive classifier with its memory bank. Both read the LarvSeg classifier's
 * outputs channel-last over the n = h·w pixel tokens at feature resolution: z [b, n, K] (logits), p̂
 * [b, n, d] and s [b, n, K] (raw cosine); labels are multi-hot [b, K] floats.
 *
 * The bank is plan state kept by two runtime host stages around the training graph
 * (`larvseg_bank.ts` says why: ONNX Runtime copies every graph output, so a bank returned as a `next:`
 * output would cost a bank-sized copy per step). The graph takes the paired classes and their bank
 * means as inputs and returns the new rows; the stages read and update the bank in place. It is saved
 * in checkpoints like the optimizer moments, a resumed run continues with bitwise the same bank, and
 * the inference graph never sees it (LarvSeg adds no inference cost).
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { divideByCount } from "../ir/count_normalized.ts";
import type { HostStage } from "../ir/plan.ts";
import { type BankDims, type BankNames, bankStages } from "./larvseg_bank.ts";
import type { AttentiveClassifier } from "../dsl/model.ts";

/** A logit low enough to drop a class from a softmax (finite, so 0·it stays 0 in gradients). */
const DROPPED = -1e30;

/**
 * Cross-entropy of `logits` [..., K] against every class l at once, with the *other* classes of
 * `present` [..., K] (multi-hot) dropped from the vocabulary: CE_l = log(Σ_{c absent} e^{z_c} + e^{z_l})
 * − z_l, [..., K]. Dense over K (no [K, K] tensor), so it scales to large vocabularies; shifted by the
 * larger of z_l and the absent classes' maximum, so no exponential overflows. Entries for absent l are
 * ordinary cross-entropies over the absent classes (callers weight them by 0).
 */
export const exclusiveCrossEntropy = (logits: Tensor, present: Tensor): Tensor => {
  const axis = logits.rank - 1;
  const absent = o.less(present, 0.5);
  // The shifts cancel mathematically; they carry no gradient.
  const maxAbsent = o.stopGradient(o.max(o.where(absent, logits, DROPPED), [axis], true)); // [..., 1]
  const shift = o.stopGradient(o.maximum(maxAbsent, logits)); // [..., K]
  // Σ_{c absent} e^{z_c − maxAbsent}; present entries read maxAbsent (e^0, then zeroed): no overflow.
  const absentSum = o.sum(
    o.where(absent, o.exp(o.sub(o.where(absent, logits, maxAbsent), maxAbsent)), 0),
    [axis],
    true,
  );
  const kept = o.sub(logits, shift);
  // An unlabelled l is already one of the absent terms.
  const total = o.add(o.mul(o.exp(o.sub(maxAbsent, shift)), absentSum), o.where(absent, 0, o.exp(kept)));
  return o.sub(o.log(total), kept);
};

/**
 * The image-level loss (λ_cls): for each image and each labelled class l, the logits averaged over all
 * pixels, the image's other labelled classes dropped, cross-entropy against l; the mean over the
 * (image, class) pairs of the batch (0 when the batch has none). logits [b, n, K], labels [b, K].
 */
export const imageLevelLoss = (logits: Tensor, labels: Tensor): Tensor => {
  const mean = o.mean(logits, [1]); // [b, K]
  const ce = exclusiveCrossEntropy(mean, labels);
  return divideByCount(o.sum(o.mul(ce, labels)), o.sum(labels), "labelledImageClasses");
};

/** z-score over the last axis (biased variance + 1e-5, as the official `normalize`). */
const zScore = (x: Tensor, epsilon = 1e-5): Tensor => {
  const axis = x.rank - 1;
  const centered = o.sub(x, o.mean(x, [axis], true));
  return o.div(centered, o.sqrt(o.add(o.mean(o.mul(centered, centered), [axis], true), epsilon)));
};

/** What the attentive classifier reads: the LarvSeg classifier's outputs and the image-level labels. */
export interface AttentiveInputs {
  /** z [b, n, K]. */
  readonly logits: Tensor;
  /** p̂ [b, n, d] (detached here). */
  readonly embeddings: Tensor;
  /** s [b, n, K], the raw cosine (detached here). */
  readonly cosine: Tensor;
  /** [b, K] multi-hot. */
  readonly labels: Tensor;
}

export interface Attentive {
  /** L_aux: mean over the (image, class) pairs scored; pairs whose bank is not ready contribute 0. */
  readonly loss: Tensor;
  /** The host stages that run before (`read`) and after (`write`) the graph; `read` declares the bank state. */
  readonly stages: { readonly read: HostStage; readonly write: HostStage };
  /** The names of the bank's state, the stages' outputs and the rows output. */
  readonly names: BankNames;
  /** The sizes the bank stages work with (to build them again for data-parallel training). */
  readonly dims: BankDims;
  /** [b, P] int64: the classes paired with each image (its labels first, lowest ids first). */
  readonly classes: Tensor;
  /** [b, P, Kp, d]: the rows `write` stores (this image's top-Kp p̂ of each paired class). */
  readonly rows: Tensor;
  /** [b, P, n]: A = σ(z-score over pixels of S_fg − S_bg). */
  readonly attention: Tensor;
}

/** The graph input a tensor is (the stages read the labels by name). */
const inputName = (t: Tensor): string => {
  const prim = t.graph.producer(t).prim;
  if (prim.op !== "input") {
    throw new Error("internal: the attentive classifier's labels must be a graph input");
  }
  return prim.name;
};

/**
 * The category-wise attentive classifier (λ_aux) with its memory bank, traced under scope `attentive`
 * (state `<scope>.attentive.bank`, `.bankPointer`, `.bankFill`). `pairs` = P (see `attentivePairs`).
 *
 * Per image, its labelled classes (at most P) each form a pair (image, l):
 *  1. S_fg = p̂·c_l with c_l the mean of class l's bank entries (entries are unit vectors, so this is
 *     their mean cosine); S_bg = the mean of S_fg over the image's other labelled classes whose bank is
 *     ready (if none, 1 − S_fg). A = σ(z-score over the pixels of S_fg − S_bg), detached.
 *  2. L_aux(l) = the image-level loss of the pixel mean of A·z (divided by n, not ΣA), other labelled
 *     classes dropped; 0 while l's bank is not ready. Mean over the pairs.
 *  3. The bank: the image's Kp pixels of highest raw cosine s_l (p̂, detached) leave the graph as
 *     `rows`; the `write` stage stores them image by image to slot ptr_l of class l, advancing ptr_l
 *     mod M (so several images of a batch take consecutive slots and the bank wraps). Cross-image:
 *     scored against the bank before the writes (`read` gathers c_l before the graph runs);
 *     single-image: after them, i.e. against this image's own top-Kp pixels (M = 1), always ready.
 *
 * The pairs, c_l and the readiness are graph inputs that `read` computes from the labels and the bank.
 */
export const attentiveClassifier = (
  spec: AttentiveClassifier,
  pairs: number,
  x: AttentiveInputs,
): Attentive =>
  x.logits.graph.scope("attentive", () => {
    const g = x.logits.graph;
    const [b, n, classes] = x.logits.shape;
    const d = x.embeddings.shape[2];
    const m = spec.slots, kp = spec.pixels, p = pairs;
    const embeddings = o.stopGradient(x.embeddings);
    const cosine = o.stopGradient(x.cosine);
    const names: BankNames = {
      labels: inputName(x.labels),
      bank: g.qualify("bank"),
      pointer: g.qualify("bankPointer"),
      fill: g.qualify("bankFill"),
      pairs: g.qualify("pairs"),
      centroids: g.qualify("centroids"),
      ready: g.qualify("bankReady"),
      rows: g.qualify("rows"),
    };

    // Pairs, from the `read` stage: labelled classes first, by class id.
    const ids = o.input(g, names.pairs, [b, p], "int64");
    const valid = o.gatherElements(x.labels, ids, 1); // [b, P] 1 = a labelled class

    // This image's top-Kp pixels of each paired class, by raw cosine: [b, P, Kp, d].
    const pairCosine = o.transpose(o.gatherElements(cosine, o.expand(o.unsqueeze(ids, 1), [b, n, p]), 2), [
      0,
      2,
      1,
    ]); // [b, P, n]
    const top = o.topK(pairCosine, kp, 2).indices; // [b, P, Kp]
    const own = o.reshape(
      o.gatherElements(embeddings, o.expand(o.reshape(top, [b, p * kp, 1]), [b, p * kp, d]), 1),
      [b, p, kp, d],
    );
    g.output(names.rows, own);

    // S_fg, S_bg and the attention A.
    const single = spec.variant === "singleImage";
    const centroids = single
      ? o.mean(own, [2]) // [b, P, d]: this image's own top-Kp pixels (the bank after the write)
      : o.input(g, names.centroids, [b, p, d]); // [b, P, d]: the bank before the write
    const ready = single ? valid : o.mul(valid, o.input(g, names.ready, [b, p]));
    const fg = o.matmul(centroids, o.mT(embeddings)); // [b, P, n]
    const weights = o.unsqueeze(ready, 2); // [b, P, 1]
    const others = o.sub(o.sum(o.mul(fg, weights), [1], true), o.mul(fg, weights));
    const count = o.sub(o.sum(weights, [1], true), weights);
    const bg = o.where(o.greater(count, 0.5), o.div(others, o.maximum(count, 1)), o.sub(1, fg));
    const attention = o.sigmoid(zScore(o.sub(fg, bg))); // [b, P, n]

    // L_aux: the image-level loss of mean_p(A_p·z_p) per pair.
    const pooled = o.div(o.matmul(attention, x.logits), n); // [b, P, K]
    const ce = exclusiveCrossEntropy(pooled, o.expand(o.unsqueeze(x.labels, 1), [b, p, classes]));
    const target = o.reshape(o.gatherElements(ce, o.unsqueeze(ids, 2), 2), [b, p]);
    const loss = divideByCount(o.sum(o.mul(target, ready)), o.sum(valid), "labelledPairs");
    const dims: BankDims = { batch: b, pairs: p, classes, slots: m, pixels: kp, d };
    return { loss, stages: bankStages(names, dims), names, dims, classes: ids, rows: own, attention };
  });
