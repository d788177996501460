/**
 * ξ, the multi-label heads: pixel tokens → K image-level scores, plus the per-image class features
 * that ψ classifies pixels against.
 *
 *  - TransformerEncoder (RankSeg's joint head): one pre-norm block over [pooled tokens ; class
 *    embeddings], LayerNorm, group-wise linear score_c = ⟨W_c, e_c⟩ + b_c. The normalized class
 *    outputs are the features ψ receives, as in the official code.
 *  - TransformerDecoder (Query2Label): post-norm cross-attention decoder layers with the class
 *    embeddings as query positions and a 2-D sine position code on the pooled tokens.
 *  - GapLinear: global average pool + linear (with `hidden`, a linear + ReLU before it, as the official
 *    GAP head); ψ receives the raw class embeddings.
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { truncNormal, uniform } from "../ir/init.ts";
import type { MultiLabelHead } from "../dsl/model.ts";
import { transformerBlock } from "./block.ts";
import { layerNorm } from "./norm.ts";
import { linear } from "./linear.ts";
import { attention } from "./attention.ts";
import { adaptiveAvgPool } from "./pool.ts";
import { dropout } from "./dropout.ts";

export interface MultiLabelOutput {
  /** [b, K] logits. */
  readonly scores: Tensor;
  /** [b, K, d] per-image class features, or [K, d] when they do not depend on the image. */
  readonly classFeatures: Tensor;
}

/** Learnable class embeddings [K, d], trunc-normal std 0.02. */
export const classEmbeddings = (g: Tensor["graph"], classes: number, dim: number): Tensor =>
  o.variable(g, "classEmbed", [classes, dim], truncNormal(0.02));

/** score_c = ⟨W_c, e_c⟩ + b_c for features e [b, K, d] (Query2Label's GroupWiseLinear, its init). */
export const groupWiseLinear = (e: Tensor): Tensor =>
  e.graph.scope("fc", () => {
    const [, k, d] = e.shape;
    const bound = 1 / Math.sqrt(d);
    const w = o.variable(e.graph, "weight", [k, d], uniform(-bound, bound));
    const b = o.variable(e.graph, "bias", [k], uniform(-bound, bound));
    return o.add(o.sum(o.mul(e, w), [2]), b);
  });

/** The 2-D sine position code (DETR / Query2Label, normalized, scale 2π) for an h×w grid: [h·w, d]. */
export const sinePositions = (h: number, w: number, d: number): Float64Array => {
  const half = d / 2;
  const out = new Float64Array(h * w * d);
  const eps = 1e-6, scale = 2 * Math.PI;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const ye = ((y + 1) / (h + eps)) * scale, xe = ((x + 1) / (w + eps)) * scale;
      for (let i = 0; i < half; i++) {
        const t = 10000 ** ((2 * Math.floor(i / 2)) / half);
        const [py, px] = [ye / t, xe / t];
        out[(y * w + x) * d + i] = i % 2 === 0 ? Math.sin(py) : Math.cos(py);
        out[(y * w + x) * d + half + i] = i % 2 === 0 ? Math.sin(px) : Math.cos(px);
      }
    }
  }
  return out;
};

/** One Query2Label decoder layer without self-attention (post-norm): cross-attention, then ReLU FFN. */
const decoderLayer = (
  tgt: Tensor,
  queryPos: Tensor,
  memory: Tensor,
  memoryPos: Tensor,
  spec: { heads: number; mlpRatio: number },
  rate: number,
) => {
  const attended = attention(o.add(tgt, queryPos), {
    heads: spec.heads,
    context: memory,
    keyContext: o.add(memory, memoryPos),
  });
  let t = layerNorm(o.add(tgt, dropout(attended, rate, { name: "drop2" })), { name: "norm2" });
  const d = t.shape[2];
  const ffn = linear(
    dropout(o.relu(linear(t, Math.round(d * spec.mlpRatio), { name: "linear1" })), rate),
    d,
    { name: "linear2" },
  );
  t = layerNorm(o.add(t, dropout(ffn, rate, { name: "drop3" })), { name: "norm3" });
  return t;
};

export const multiLabelHead = (
  spec: MultiLabelHead,
  pixels: Tensor,
  grid: readonly [number, number],
  classes: number,
  train: boolean,
): MultiLabelOutput =>
  pixels.graph.scope("xi", () => {
    const g = pixels.graph;
    const [b, , d] = pixels.shape;
    const embed = classEmbeddings(g, classes, d);
    switch (spec._tag) {
      case "TransformerEncoder": {
        const pooled = adaptiveAvgPool(pixels, grid, spec.pool);
        const tokens = o.concat([pooled, o.expand(o.unsqueeze(embed, 0), [b, classes, d])], 1);
        const out = transformerBlock(tokens, {
          heads: spec.heads,
          mlpRatio: spec.mlpRatio,
          dropout: train ? spec.dropout : 0,
          name: "block",
        });
        const features = layerNorm(
          o.slice(out, [1], [spec.pool * spec.pool], [spec.pool * spec.pool + classes]),
        );
        return { scores: groupWiseLinear(features), classFeatures: features };
      }
      case "TransformerDecoder": {
        const memory = adaptiveAvgPool(pixels, grid, spec.pool);
        const memoryPos = o.constant(g, sinePositions(spec.pool, spec.pool, d), [
          1,
          spec.pool * spec.pool,
          d,
        ]);
        const queryPos = o.expand(o.unsqueeze(embed, 0), [b, classes, d]);
        let tgt = o.zeros(g, [b, classes, d]);
        for (let i = 0; i < spec.layers; i++) {
          tgt = g.scope(
            `layers.${i}`,
            () => decoderLayer(tgt, queryPos, memory, memoryPos, spec, train ? spec.dropout : 0),
          );
        }
        const features = layerNorm(tgt);
        return { scores: groupWiseLinear(features), classFeatures: features };
      }
      case "GapLinear": {
        const pooled = o.mean(pixels, [1]); // [b, d]
        // The official GAP head has a width-preserving 1×1 conv + ReLU before its classifier.
        const features = spec.hidden ? o.relu(linear(pooled, d, { name: "hidden" })) : pooled;
        return {
          scores: linear(features, classes, { name: "fc", init: truncNormal(0.02) }),
          classFeatures: embed,
        };
      }
    }
  });
