/**
 * The segmenter, read top to bottom like the paper: backbone → pixel tokens P; ξ → K scores and class
 * features; top-κ selection; ψ over [P ; selected class features] → κ rank-ordered logits; τ.
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import type { Segmenter } from "../dsl/model.ts";
import { backbone, type Features } from "./backbone.ts";
import { linear } from "./linear.ts";
import { classEmbeddings, multiLabelHead } from "./xi.ts";
import { gatherClasses, presence, probeScores, selectClasses, type Selected } from "./selection.ts";
import { larvSegClassifier, type LarvSegPixels, pixelHead } from "./psi.ts";
import { applyTemperature } from "./temperature.ts";

export interface SegmenterOutput {
  /** [b, K] multi-label logits (ξ's, or the frozen ranker's), when the model has a ranking. */
  readonly scores?: Tensor;
  /** Selected classes [b, κ] (absent for the complete label: rank = class id). */
  readonly selected?: Selected;
  /** [b, κ, h, w] rank-ordered logits at feature resolution (absent for multi-label-only models). */
  readonly logits?: Tensor;
  /** The same logits channel-last, [b, h, w, κ]: ψ's own layout (a reshape, no copy). */
  readonly logitsChannelsLast?: Tensor;
  /** [b, K] the ranker-quality probe's scores in [0, 1] that selected the classes, when it ran. */
  readonly probeScores?: Tensor;
  /** [b, K] ground-truth presence, when labels were given. */
  readonly present?: Tensor;
  /** The LarvSeg classifier's p̂ and raw cosine (and its logits, before τ), when ψ is that classifier. */
  readonly larvSeg?: LarvSegPixels;
}

export interface ForwardOptions {
  readonly mode: "train" | "eval";
  /** Token grid of the training crop (position embeddings are learned at this grid). */
  readonly trainGrid: readonly [number, number];
  /** Integer labels [b, H, W] (int64), for oracle selection and targets. */
  readonly labels?: Tensor;
  /** Scores from a frozen, separately trained multi-label model (independent scheme). */
  readonly rankerScores?: Tensor;
  /**
   * The ranker-quality probe's α (evaluation of a top-κ model, with `labels`): select by ξ's scores mixed
   * with the ground truth (`probeScores`) instead of ξ's own.
   */
  readonly groundTruthWeight?: number;
}

export const segmenterForward = (spec: Segmenter, images: Tensor, opts: ForwardOptions): SegmenterOutput =>
  segmenterFromFeatures(spec, backbone(images, spec.backbone, opts.trainGrid, opts.mode === "train"), opts);

/**
 * Everything after the backbone, from its tokens [b, h·w, d] on the h×w grid: pixel tokens P, then the
 * head (`segmenterHead`). A frozen backbone's cached tokens enter here.
 */
export const segmenterFromFeatures = (
  spec: Segmenter,
  { tokens, grid }: Features,
  opts: Omit<ForwardOptions, "trainGrid">,
): SegmenterOutput => {
  const pixels = linear(tokens, spec.headDim, { name: "proj" }); // P: pixel tokens (proj_dec)
  return segmenterHead(spec, pixels, grid, opts);
};

/**
 * Everything after the backbone: pixel tokens P [b, h·w, d] on the h×w `grid` → ξ, selection, ψ, τ.
 * On its own it is what the vocabulary-scaling benchmark times.
 */
export const segmenterHead = (
  spec: Segmenter,
  pixels: Tensor,
  grid: readonly [number, number],
  opts: Omit<ForwardOptions, "trainGrid">,
): SegmenterOutput => {
  const g = pixels.graph;
  const train = opts.mode === "train";
  const xi = spec.xi ? multiLabelHead(spec.xi, pixels, grid, spec.classes, train) : undefined;
  // A separately trained ranker's scores, where given, rank in place of the model's own ξ (the independent
  // scheme has no ξ; `grid ranker-quality --ranker` swaps one in at evaluation); ξ's class features stay.
  const scores = opts.rankerScores ?? xi?.scores;
  const present = opts.labels && presence(opts.labels, spec.classes, spec.ignoreIndex);
  if (!spec.psi) return { scores, present };
  const probe = opts.groundTruthWeight === undefined ? undefined : (() => {
    if (!scores || !present || spec.select._tag !== "TopK") {
      throw new Error("internal: the ranker-quality probe needs a top-κ model's scores and labels");
    }
    return probeScores(scores, present, opts.groundTruthWeight);
  })();
  const selected = selectClasses(spec.select, opts.mode, probe ?? scores, () => {
    if (!present) throw new Error("internal: oracle selection needs labels");
    return present;
  });
  const classFeatures = xi?.classFeatures ??
    g.scope("psi", () => classEmbeddings(g, spec.classes, spec.headDim));
  const chosen = selected ? gatherClasses(classFeatures, selected.indices) : classFeatures;
  const larvSeg = spec.psi._tag === "LarvSeg" ? larvSegClassifier(spec.psi, pixels, chosen) : undefined;
  const rankLogits = larvSeg?.logits ??
    pixelHead(spec.psi, pixels, chosen, selected?.indices, spec.classes, train); // [b, n, κ]
  const scaled = applyTemperature(spec.temperature, rankLogits, selected?.valid);
  const [b, , k] = scaled.shape;
  const logits = o.reshape(o.transpose(scaled, [0, 2, 1]), [b, k, grid[0], grid[1]]);
  const logitsChannelsLast = o.reshape(scaled, [b, grid[0], grid[1], k]);
  return {
    scores,
    selected,
    logits,
    logitsChannelsLast,
    present,
    larvSeg,
    ...(probe ? { probeScores: probe } : {}),
  };
};
