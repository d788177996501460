/**
 * LarvSeg's training losses over image-level labels (DESIGN.md, "LarvSeg facts"): the image-level loss
 * and the category-wise attentive classifier with its memory bank. Both read the LarvSeg classifier's
 * outputs channel-last over the n = h·w pixel tokens at feature resolution: z [b, n, K] (logits), p̂
 * [b, n, d] and s [b, n, K] (raw cosine); labels are multi-hot [b, K] floats.
 *
 * The bank is plan state (variables with `trainable: false`), updated inside the training graph: its
 * `next:` outputs replace it after each run, so it is saved in checkpoints like the optimizer moments
 * and a resumed run continues with bitwise the same bank. Nothing here has a parameter that inference
 * needs: the inference graph never declares the bank (LarvSeg adds no inference cost).
 */
import type { Tensor } from "../plan/graph.ts";
import * as o from "../plan/ops.ts";
import { zeros } from "../plan/init.ts";
import { NEXT } from "../plan/runtime.ts";
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
  return o.div(o.sum(o.mul(ce, labels)), o.maximum(o.sum(labels), 1));
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

/** The bank's state and the values that replace it after the run (already exposed as `next:` outputs). */
export interface Bank {
  /** [K, M, Kp, d]: per class, M slots of the top-Kp pixel embeddings of one image. */
  readonly features: Tensor;
  /** [K]: the slot the next write goes to (an integer, stored as float32 like all checkpointed state). */
  readonly pointer: Tensor;
  /** [K]: writes so far, saturating at M (the bank is ready when full). */
  readonly fill: Tensor;
  readonly next: { readonly features: Tensor; readonly pointer: Tensor; readonly fill: Tensor };
}

export interface Attentive {
  /** L_aux: mean over the (image, class) pairs scored; pairs whose bank is not ready contribute 0. */
  readonly loss: Tensor;
  readonly bank: Bank;
  /** [b, P] int64: the classes paired with each image (its labels first, lowest ids first). */
  readonly classes: Tensor;
  /** [b, P, n]: A = σ(z-score over pixels of S_fg − S_bg). */
  readonly attention: Tensor;
}

const variableName = (t: Tensor): string => {
  const prim = t.graph.producer(t).prim;
  if (prim.op !== "variable") throw new Error("internal: bank state must be a variable");
  return prim.name;
};

/** x mod m for non-negative integer-valued floats (exact: integer division on int64). */
const modulo = (x: Tensor, m: number): Tensor => {
  const i = o.cast(x, "int64");
  return o.cast(o.sub(i, o.mul(o.div(i, m), m)), "float32");
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
 *  3. The bank: the image's Kp pixels of highest raw cosine s_l are written (p̂, detached) to slot
 *     (ptr_l + writes of l by earlier images of the batch) mod M; ptr_l advances by the batch's writes
 *     of l; a write that a later image of the batch overwrites is skipped, so the result equals writing
 *     image by image. Cross-image: scored against the bank before the writes; single-image: after them,
 *     i.e. against this image's own top-Kp pixels (M = 1), always ready.
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

    // Pairs: ONNX TopK breaks ties by the lower index, so labelled classes come first, by class id.
    const ids = o.topK(x.labels, p, 1).indices; // [b, P]
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

    // The bank and its bookkeeping.
    const features = o.variable(g, "bank", [classes, m, kp, d], zeros, { trainable: false });
    const pointer = o.variable(g, "bankPointer", [classes], zeros, { trainable: false });
    const fill = o.variable(g, "bankFill", [classes], zeros, { trainable: false });
    const writes = o.scatterElements(o.zeros(g, [b, classes]), ids, valid, 1); // [b, K] 0/1
    const earlierImages = o.constant(
      g,
      Array.from({ length: b * b }, (_, i) => (i % b < Math.floor(i / b) ? 1 : 0)),
      [b, b],
    ); // [i, j] = 1 for j < i
    const before = o.matmul(earlierImages, writes); // [b, K]: writes of the class by earlier images
    const perClass = o.sum(writes, [0]); // [K]
    const offset = o.gatherElements(before, ids, 1); // [b, P]
    const slot = modulo(o.add(o.gather(pointer, ids, 0), offset), m); // [b, P]
    // Skipped: a later image of the batch writes the same slot (M or more writes after this one).
    const kept = o.mul(
      valid,
      o.cast(o.greaterOrEqual(offset, o.sub(o.gather(perClass, ids, 0), m)), "float32"),
    );
    const rows = o.cast(o.add(o.mul(o.cast(ids, "float32"), m), slot), "int64"); // [b, P] into [K·M]
    const flatRows = o.reshape(rows, [b * p]);
    const bankRows = o.reshape(features, [classes * m, kp * d]);
    const written = o.scatterElements(
      o.zeros(g, [classes * m]),
      flatRows,
      o.reshape(kept, [b * p]),
      0,
      "add",
    );
    // Kept writes target distinct rows; skipped ones add exact zeros, so each written row is bitwise p̂.
    const added = o.scatterElements(
      o.zeros(g, [classes * m, kp * d]),
      o.expand(o.reshape(flatRows, [b * p, 1]), [b * p, kp * d]),
      o.mul(o.reshape(own, [b * p, kp * d]), o.reshape(kept, [b * p, 1])),
      0,
      "add",
    );
    const nextFeatures = o.reshape(
      o.where(o.greater(o.reshape(written, [classes * m, 1]), 0.5), added, bankRows),
      [classes, m, kp, d],
    );
    const nextPointer = modulo(o.add(pointer, perClass), m);
    const nextFill = o.minimum(o.add(fill, perClass), m);
    for (const [state, next] of [[features, nextFeatures], [pointer, nextPointer], [fill, nextFill]]) {
      g.output(`${NEXT}${variableName(state)}`, next);
    }

    // S_fg, S_bg and the attention A.
    const single = spec.variant === "singleImage";
    const centroids = single
      ? o.mean(own, [2]) // [b, P, d]: this image's own top-Kp pixels (the bank after the write)
      : o.mean(o.gather(features, ids, 0), [2, 3]); // [b, P, d]: the bank before the write
    const ready = single
      ? valid
      : o.mul(valid, o.cast(o.greaterOrEqual(o.gather(fill, ids, 0), m), "float32"));
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
    const loss = o.div(o.sum(o.mul(target, ready)), o.maximum(o.sum(valid), 1));
    return {
      loss,
      bank: {
        features,
        pointer,
        fill,
        next: { features: nextFeatures, pointer: nextPointer, fill: nextFill },
      },
      classes: ids,
      attention,
    };
  });
