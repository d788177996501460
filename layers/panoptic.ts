/**
 * The panoptic mask transformer (kMaX-DeepLab's layout): backbone → pixel decoder → transformer decoder
 * over N object queries → class head, mask embeddings · pixel embeddings, auxiliary semantic head.
 *
 * Parameters, under the scope the caller opens (`model`): `backbone.*`, `pixelDecoder.*`,
 * `transformerDecoder.*` (`queries`, `layers.{l}.*`, `norm`), `classHead`, `maskEmbeddingHead`,
 * `pixelEmbeddingHead`, `semanticHead` (training only) and `rankSegHead` (RankSeg query classification).
 *
 * Simplifications against kMaX, for CPU scale: every decoder layer attends to the stride-4 pixel
 * features (kMaX walks strides 32 → 16 → 8 in its three stages), normalization is LayerNorm (kMaX's
 * BatchNorm needs batch statistics that a batch of 2–4 crops does not give), and the pixel decoder is a
 * top-down FPN (kMaX's is an axial-attention one).
 */
import type { Tensor } from "../plan/graph.ts";
import * as o from "../plan/ops.ts";
import { normal, zeros } from "../plan/init.ts";
import type { PanopticSegmenter } from "../dsl/model.ts";
import { convNetStages } from "./backbone.ts";
import { mobileNetV2 } from "./mobilenet_v2.ts";
import { attention } from "./attention.ts";
import { linear } from "./linear.ts";
import { layerNorm } from "./norm.ts";
import { mlp } from "./mlp.ts";
import { MASKED_LOGIT } from "./temperature.ts";

export interface PanopticOutput {
  /** [b, N, K + 1]: class logits per query, void last (RankSeg: unselected classes at −100). */
  readonly classLogits: Tensor;
  /** [b, N, P]: mask logits per query over the P = h·w pixels of the stride-4 grid. */
  readonly maskLogits: Tensor;
  /** [h, w]: the stride-4 grid of the mask logits. */
  readonly grid: readonly [number, number];
  /** [b, K, P]: the auxiliary semantic head's logits (training only). */
  readonly semanticLogits?: Tensor;
  /** [b, K]: RankSeg's multi-label scores (logits). */
  readonly scores?: Tensor;
}

export interface PanopticForwardOptions {
  readonly mode: "train" | "eval";
  /** [b, K] 1 where a class occurs in the image: in training RankSeg always lets queries predict these. */
  readonly present?: Tensor;
}

/** The backbone's maps at stride 4 and coarser, NCHW, under scope `backbone`. */
const backboneMaps = (images: Tensor, spec: PanopticSegmenter): Tensor[] =>
  images.graph.scope("backbone", () => {
    const b = spec.backbone;
    let maps: Tensor[] = [];
    if (b._tag === "ConvNet") maps = convNetStages(images, b);
    if (b._tag === "MobileNetV2") {
      const features = mobileNetV2(images, b);
      maps = b.outputs.map((name) => features[name]!);
    }
    const stride4 = images.shape[2] / 4;
    return maps.filter((m) => m.shape[2] <= stride4);
  });

/** A 1×1 (`k` = 1) or 3×3 convolution with bias, He-initialized. */
const conv = (x: Tensor, out: number, k: 1 | 3, name: string): Tensor =>
  x.graph.scope(name, () => {
    const cin = x.shape[1];
    const w = o.variable(x.graph, "weight", [out, cin, k, k], normal(Math.sqrt(2 / (cin * k * k))));
    const bias = o.variable(x.graph, "bias", [1, out, 1, 1], zeros);
    const p = (k - 1) / 2;
    return o.add(o.conv(x, w, { pads: [p, p, p, p] }), bias);
  });

/**
 * Pixel decoder: each map projected to `pixelDecoderDim` (lateral 1×1), summed top-down from the
 * coarsest (upsampled bilinearly to the next map's size), then a 3×3 conv + GELU at stride 4.
 * Returns pixel features [b, P, D] on the stride-4 grid.
 */
export const pixelDecoder = (
  maps: readonly Tensor[],
  dim: number,
): { pixels: Tensor; grid: [number, number] } =>
  maps[0].graph.scope("pixelDecoder", () => {
    const byResolution = [...maps].sort((a, b) => a.shape[2] - b.shape[2]); // coarsest first
    let y = conv(byResolution[0], dim, 1, `lateral.0`);
    for (let i = 1; i < byResolution.length; i++) {
      const [, , h, w] = byResolution[i].shape;
      const up = y.shape[2] === h && y.shape[3] === w ? y : o.resize(y, h, w);
      y = o.add(conv(byResolution[i], dim, 1, `lateral.${i}`), up);
    }
    const out = o.gelu(conv(y, dim, 3, "output"));
    const [b, d, h, w] = out.shape;
    return { pixels: layerNorm(o.mT(o.reshape(out, [b, d, h * w])), { name: "norm" }), grid: [h, w] };
  });

/**
 * kMaX's cluster-wise argmax cross-attention: each pixel is assigned to the query (cluster centre) with
 * the highest affinity q·k — a one-hot over queries instead of a softmax over pixels — and each query
 * is updated by the sum of its pixels' values (LayerNorm'd: kMaX normalizes the update with BatchNorm).
 * The argmax passes no gradient; the values and the projection learn.
 */
export const kmeansCrossAttention = (queries: Tensor, pixels: Tensor): Tensor =>
  queries.graph.scope("kmeansAttn", () => {
    const [, n, d] = queries.shape;
    const q = linear(queries, d, { name: "q" });
    const k = linear(pixels, d, { name: "k" });
    const v = linear(pixels, d, { name: "v" });
    const affinity = o.matmul(q, o.mT(k)); // [b, N, P]
    const assignment = o.mT(o.oneHot(o.argMax(affinity, 1), n, "float32")); // [b, N, P], one 1 per pixel
    const update = layerNorm(o.matmul(assignment, v), { name: "updateNorm" }); // [b, N, d]
    return linear(update, d, { name: "proj" });
  });

/** One transformer-decoder layer: queries cross-attend to pixels, self-attend, FFN (pre-norm residuals). */
export const transformerDecoderLayer = (
  queries: Tensor,
  pixels: Tensor,
  spec: PanopticSegmenter,
  name: string,
): Tensor =>
  queries.graph.scope(name, () => {
    const d = spec.queryDim;
    const x = layerNorm(queries, { name: "norm1" });
    const cross = spec.crossAttention === "kmeans"
      ? kmeansCrossAttention(x, pixels)
      : attention(x, { heads: spec.heads, context: pixels, name: "crossAttn" });
    let h = o.add(queries, cross);
    h = o.add(h, attention(layerNorm(h, { name: "norm2" }), { heads: spec.heads, name: "selfAttn" }));
    return o.add(h, mlp(layerNorm(h, { name: "norm3" }), Math.round(d * spec.mlpRatio)));
  });

/** N learned queries refined by the decoder layers → [b, N, queryDim]. */
export const transformerDecoder = (pixels: Tensor, spec: PanopticSegmenter): Tensor =>
  pixels.graph.scope("transformerDecoder", () => {
    const [b] = pixels.shape;
    const g = pixels.graph;
    // Unit-scale initial queries: with kMaX's argmax, near-equal queries would all tie on query 0.
    const init = o.variable(g, "queries", [1, spec.numMaskSlots, spec.queryDim], normal(1));
    let queries = o.expand(init, [b, spec.numMaskSlots, spec.queryDim]);
    for (let l = 0; l < spec.transformerDecoderLayers; l++) {
      queries = transformerDecoderLayer(queries, pixels, spec, `layers.${l}`);
    }
    return layerNorm(queries, { name: "norm" });
  });

/**
 * RankSeg query classification: a multi-label head (mean-pooled pixels → K scores) ranks the classes;
 * each query's logits keep the top-κ classes and void, the rest are set to −100 (the same as classifying
 * over the κ + 1 selected columns). In training the image's own classes stay selected too, so a matched
 * query's target is never masked; the ranking learns from its own loss.
 */
export const rankSegClassLogits = (
  classLogits: Tensor,
  pixels: Tensor,
  k: number,
  present?: Tensor,
): { classLogits: Tensor; scores: Tensor } => {
  const g = pixels.graph;
  const [b, , kPlusVoid] = classLogits.shape;
  const classes = kPlusVoid - 1;
  const scores = linear(o.mean(pixels, [1]), classes, { name: "rankSegHead" }); // [b, K]
  const topK = o.sum(o.oneHot(o.topK(o.stopGradient(scores), k, 1).indices, classes, "float32"), [1]);
  const selected = present ? o.maximum(topK, present) : topK; // [b, K]
  const keep = o.greater(o.concat([selected, o.full(g, [b, 1], 1)], 1), 0.5); // void always kept
  return {
    classLogits: o.where(o.unsqueeze(keep, 1), classLogits, MASKED_LOGIT),
    scores,
  };
};

/** The whole model: images [b, 3, H, W] → class logits, mask logits (and training-only heads). */
export const panopticForward = (
  spec: PanopticSegmenter,
  images: Tensor,
  { mode, present }: PanopticForwardOptions,
): PanopticOutput => {
  const { pixels, grid } = pixelDecoder(backboneMaps(images, spec), spec.pixelDecoderDim);
  const queries = transformerDecoder(pixels, spec);
  let classLogits = linear(queries, spec.classes + 1, { name: "classHead" });
  const maskEmbeddings = linear(queries, spec.maskEmbeddingDim, { name: "maskEmbeddingHead" });
  const pixelEmbeddings = linear(pixels, spec.maskEmbeddingDim, { name: "pixelEmbeddingHead" });
  // mask logits = query embedding · pixel embeddings (scaled as attention scores are).
  const maskLogits = o.matmul(
    o.mul(maskEmbeddings, 1 / Math.sqrt(spec.maskEmbeddingDim)),
    o.mT(pixelEmbeddings),
  );
  let scores: Tensor | undefined;
  const q = spec.queryClassification;
  if (q._tag === "RankSeg") {
    ({ classLogits, scores } = rankSegClassLogits(
      classLogits,
      pixels,
      q.k,
      mode === "train" ? present : undefined,
    ));
  }
  const semanticLogits = mode === "train"
    ? o.mT(linear(pixels, spec.classes, { name: "semanticHead" })) // [b, K, P]
    : undefined;
  return { classLogits, maskLogits, grid, semanticLogits, scores };
};
