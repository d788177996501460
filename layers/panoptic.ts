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
 * BatchNorm needs batch statistics that a batch of 2–4 crops does not give), the pixel decoder is a
 * top-down FPN (kMaX's is an axial-attention one), the decoder layers cluster with the final mask
 * predictor (kMaX gives each layer a predictor of its own) and no loss is applied to the layers'
 * predictions (kMaX's deep supervision). Kept from kMaX: clustering by mask predictions, the class
 * head's std-0.01 initialization and its constant bias towards void (`withVoidPrior`).
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { normal, ones, truncNormal, zeros } from "../ir/init.ts";
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

/**
 * The backbone's maps at stride 4 and coarser, NCHW, under scope `backbone`: what the pixel decoder
 * reads (and what a frozen backbone's feature cache holds).
 */
export const backboneMaps = (images: Tensor, spec: PanopticSegmenter): Tensor[] =>
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
 * kMaX's prediction of masks from queries [b, N, D] → mask logits [b, N, P]: the decoder's output norm
 * (`transformerDecoder.norm`), the mask-embedding head, · the pixel embeddings (scaled as attention scores
 * are). Built once per model: the final prediction and every decoder layer's clustering share it, as
 * kMaX's layers cluster pixels by the same kind of mask prediction that the losses train.
 */
export interface MaskPredictor {
  /** The decoder's output norm, shared by the final prediction and each layer's clustering. */
  readonly norm: (queries: Tensor) => Tensor;
  /** Mask logits of normalized queries. */
  readonly masks: (normalized: Tensor) => Tensor;
}

/** The shared mask predictor over pixel features [b, P, C] (creates its parameters once). */
export const maskPredictor = (pixels: Tensor, spec: PanopticSegmenter): MaskPredictor => {
  const g = pixels.graph;
  const e = spec.maskEmbeddingDim;
  const pixelEmbeddings = linear(pixels, e, { name: "pixelEmbeddingHead" }); // [b, P, E]
  const [w, bias] = g.scope("maskEmbeddingHead", () => [
    o.variable(g, "weight", [spec.queryDim, e], truncNormal(0.02)),
    o.variable(g, "bias", [e], zeros),
  ]);
  const [scale, shift] = g.scope("transformerDecoder", () =>
    g.scope("norm", () => [
      o.variable(g, "weight", [spec.queryDim], ones),
      o.variable(g, "bias", [spec.queryDim], zeros),
    ]));
  return {
    norm: (queries) => o.layerNorm(queries, scale, shift, { epsilon: 1e-5 }),
    masks: (normalized) =>
      o.matmul(o.mul(o.add(o.matmul(normalized, w), bias), 1 / Math.sqrt(e)), o.mT(pixelEmbeddings)),
  };
};

/**
 * kMaX's cluster-wise argmax cross-attention: each pixel is assigned to the query (cluster centre) whose
 * predicted mask logit there is highest — a one-hot over queries instead of a softmax over pixels — and
 * each query is updated by the sum of its pixels' values (LayerNorm'd: kMaX normalizes the update with
 * BatchNorm). As in kMaX, the assignment comes from the mask prediction of the current queries (which
 * the mask losses train), not from a separate query–key affinity: the argmax passes no gradient, so
 * projections that only fed it would never learn. `maskLogits` [b, N, P] are those predictions.
 */
export const kmeansCrossAttention = (queries: Tensor, pixels: Tensor, maskLogits: Tensor): Tensor =>
  queries.graph.scope("kmeansAttn", () => {
    const d = queries.shape[2];
    const v = linear(pixels, d, { name: "v" });
    const update = layerNorm(o.matmul(kmeansAssignment(maskLogits), v), { name: "updateNorm" }); // [b, N, d]
    return linear(update, d, { name: "proj" });
  });

/**
 * The k-means assignment [b, N, P] of mask logits [b, N, P]: 1 where query n has pixel p's highest logit
 * (kMaX's cluster-wise argmax, over the queries), else 0; constant (no gradient), as kMaX's.
 */
export const kmeansAssignment = (maskLogits: Tensor): Tensor => {
  const n = maskLogits.shape[1];
  return o.mT(o.oneHot(o.argMax(o.stopGradient(maskLogits), 1), n, "float32"));
};

/** One transformer-decoder layer: queries cross-attend to pixels, self-attend, FFN (pre-norm residuals). */
export const transformerDecoderLayer = (
  queries: Tensor,
  pixels: Tensor,
  spec: PanopticSegmenter,
  name: string,
  predict: MaskPredictor,
): Tensor =>
  queries.graph.scope(name, () => {
    const d = spec.queryDim;
    // kMaX clusters pixels by the current queries' mask predictions (the shared predictor, its norm
    // included); softmax cross-attention reads its own pre-norm.
    const cross = spec.crossAttention === "kmeans"
      ? kmeansCrossAttention(queries, pixels, predict.masks(predict.norm(queries)))
      : attention(layerNorm(queries, { name: "norm1" }), {
        heads: spec.heads,
        context: pixels,
        name: "crossAttn",
      });
    let h = o.add(queries, cross);
    h = o.add(h, attention(layerNorm(h, { name: "norm2" }), { heads: spec.heads, name: "selfAttn" }));
    return o.add(h, mlp(layerNorm(h, { name: "norm3" }), Math.round(d * spec.mlpRatio)));
  });

/** N learned queries refined by the decoder layers → [b, N, queryDim]. */
export const transformerDecoder = (
  pixels: Tensor,
  spec: PanopticSegmenter,
  predict: MaskPredictor,
): Tensor =>
  pixels.graph.scope("transformerDecoder", () => {
    const [b] = pixels.shape;
    const g = pixels.graph;
    // Unit-scale initial queries (kMaX's cluster centres: truncated normal, std 1).
    const init = o.variable(g, "queries", [1, spec.numMaskSlots, spec.queryDim], normal(1));
    let queries = o.expand(init, [b, spec.numMaskSlots, spec.queryDim]);
    for (let l = 0; l < spec.transformerDecoderLayers; l++) {
      queries = transformerDecoderLayer(queries, pixels, spec, `layers.${l}`, predict);
    }
    return predict.norm(queries);
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

/** kMaX's prior probability of void for every query at initialization. */
export const VOID_PRIOR = 0.9;

/**
 * kMaX's bias towards void: a constant log(K·p / (1 − p)) added to the void logit, so that a query whose
 * class logits are near zero (kMaX initializes the class head with std 0.01) predicts void with
 * probability p and each class with (1 − p) / K. Most queries are unmatched, so this starts them at their
 * target instead of spending the first steps pushing every query towards void.
 */
export const withVoidPrior = (classLogits: Tensor, p: number): Tensor => {
  const k1 = classLogits.shape[classLogits.rank - 1];
  const bias = Float32Array.from(
    { length: k1 },
    (_, c) => c === k1 - 1 ? Math.log(((k1 - 1) * p) / (1 - p)) : 0,
  );
  return o.add(classLogits, o.constant(classLogits.graph, bias, [k1]));
};

/** The whole model: images [b, 3, H, W] → class logits, mask logits (and training-only heads). */
export const panopticForward = (
  spec: PanopticSegmenter,
  images: Tensor,
  options: PanopticForwardOptions,
): PanopticOutput => panopticHead(spec, backboneMaps(images, spec), options);

/**
 * Everything after the backbone, from its maps (`backboneMaps`): pixel decoder, transformer decoder,
 * class and mask heads. A frozen backbone's cached maps enter here.
 */
export const panopticHead = (
  spec: PanopticSegmenter,
  maps: readonly Tensor[],
  { mode, present }: PanopticForwardOptions,
): PanopticOutput => {
  const { pixels, grid } = pixelDecoder(maps, spec.pixelDecoderDim);
  const predict = maskPredictor(pixels, spec);
  const queries = transformerDecoder(pixels, spec, predict);
  let classLogits = withVoidPrior(
    linear(queries, spec.classes + 1, { name: "classHead", init: truncNormal(0.01) }),
    VOID_PRIOR,
  );
  const maskLogits = predict.masks(queries);
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
