/**
 * Top-κ label selection and the training targets it implies, computed inside the graph.
 *
 * Selection returns one index set per image, [b, κ] int64, sorted by score — batched, so the gather
 * of class features is correct for any batch size (the official code's gather is only correct for
 * batch 1). The ground-truth oracle fills κ slots with the classes present (ranked by ξ's score when
 * there is a ξ, else by class id); slots beyond the present classes are marked invalid and masked out.
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import type { Selection } from "../dsl/model.ts";

export interface Selected {
  /** [b, κ] int64 class ids, best first. */
  readonly indices: Tensor;
  /** [b, κ] bool: false for oracle slots that hold no present class. */
  readonly valid?: Tensor;
}

/** [b, K] float: 1 where class c occurs in the label map (ignored pixels excluded). */
export const presence = (labels: Tensor, classes: number, ignoreIndex: number): Tensor => {
  const g = labels.graph;
  const [b] = labels.shape;
  const flat = o.reshape(labels, [b, -1]);
  // Ignored pixels count into an extra column K that is dropped afterwards.
  const safe = o.where(o.equal(flat, ignoreIndex), classes, flat);
  const counts = o.scatterElements(o.zeros(g, [b, classes + 1]), safe, o.full(g, flat.shape, 1), 1, "add");
  return o.cast(o.greater(o.slice(counts, [1], [0], [classes]), 0), "float32");
};

/** The κ highest-scoring classes per image, sorted. */
export const topKClasses = (scores: Tensor, k: number): Selected => ({
  indices: o.topK(scores, k, 1).indices,
});

/** The ground-truth oracle: present classes first (by `scores` if given, else by class id). */
export const groundTruthClasses = (present: Tensor, k: number, scores?: Tensor): Selected => {
  const [, classes] = present.shape;
  const order = scores
    ? o.sigmoid(o.stopGradient(scores))
    : o.constant(present.graph, Array.from({ length: classes }, (_, c) => 1 - (c + 1) / (classes + 1)), [
      1,
      classes,
    ]);
  const indices = o.topK(o.add(o.mul(present, 2), order), k, 1).indices;
  return { indices, valid: o.greater(o.gatherElements(present, indices, 1), 0.5) };
};

/**
 * The ranker-quality probe's scores [b, K] in [0, 1]: ξ's probabilities with the ground truth's presence
 * added at weight 2α, (σ(ξ) + 2α·present) / (1 + 2α). α = 0 is ξ's own ranking; α = 1 ranks exactly as the
 * oracle does (present classes first, each group by ξ's score: `groundTruthClasses`' order), and from about
 * α = ½ on every present class is already above every absent one. Between, it is a ranker of intermediate
 * quality on the same trained model (grids/ranker_quality.ts sweeps it); the division only keeps the scores
 * in [0, 1] for the average precision and does not change the order.
 */
export const probeScores = (scores: Tensor, present: Tensor, alpha: number): Tensor =>
  o.div(o.add(o.sigmoid(o.stopGradient(scores)), o.mul(present, 2 * alpha)), 1 + 2 * alpha);

/**
 * Applies a selection rule. `mode` decides between the oracle and top-κ for `GroundTruth` specs that
 * use the ground truth only at evaluation. Returns undefined for the complete label (`All`).
 */
export const selectClasses = (
  spec: Selection,
  mode: "train" | "eval",
  scores: Tensor | undefined,
  present: () => Tensor,
): Selected | undefined => {
  if (spec._tag === "All") return undefined;
  // Top-κ at evaluation only: training sees every class.
  if (spec._tag === "TopK" && spec.train === false && mode === "train") return undefined;
  const oracle = spec._tag === "GroundTruth" && (mode === "train" ? spec.train : spec.eval);
  if (oracle) return groundTruthClasses(present(), spec.k, scores);
  if (!scores) {
    throw new Error(`internal: ${spec._tag} selection without scores (validation should refuse this)`);
  }
  return topKClasses(scores, spec.k);
};

/** Rows of per-class features [b, K, d] (or shared [K, d]) for the selected classes: [b, κ, d]. */
export const gatherClasses = (features: Tensor, indices: Tensor): Tensor => {
  if (features.rank === 2) return o.gather(features, indices, 0);
  const [b, k] = indices.shape;
  const d = features.shape[2];
  return o.gatherElements(features, o.expand(o.unsqueeze(indices, 2), [b, k, d]), 1);
};

/**
 * Pixel targets in rank space: a pixel of class c gets the rank r with indices[r] = c, or the ignore
 * index when c was not selected (or is ignored). labels [b, H, W] int64 → [b, H, W] int64.
 */
export const rankTargets = (
  labels: Tensor,
  indices: Tensor,
  classes: number,
  ignoreIndex: number,
): Tensor => {
  const g = labels.graph;
  const [b, k] = indices.shape;
  const ranks = o.expand(o.constant(g, Array.from({ length: k }, (_, r) => r), [1, k], "int64"), [b, k]);
  const table = o.scatterElements(
    o.full(g, [b, classes + 1], ignoreIndex, "int64"),
    indices,
    ranks,
    1,
    "none",
  );
  const flat = o.reshape(labels, [b, -1]);
  const safe = o.where(o.equal(flat, ignoreIndex), classes, flat);
  return o.reshape(o.gatherElements(table, safe, 1), labels.shape);
};
