/**
 * ψ, the pixel heads: pixel tokens [b, n, d] × selected class features [b, κ, d] → logits [b, n, κ].
 *
 *  - MaskTransformer (Segmenter): pre-norm blocks over [pixel tokens ; class features], LayerNorm,
 *    separate projections of patches and classes, both L2-normalized; logits are their cosine.
 *  - Linear: a per-pixel linear classifier; with a selection, each image uses the weight rows of its
 *    selected classes.
 *  - LarvSeg: projected, L2-normalised pixel features and class embeddings, cosine, z-score over the
 *    classes of each pixel with learnable scalars γ, β (`larvSegClassifier`, which also returns what
 *    LarvSeg's attentive classifier reads: p̂ and the raw cosine).
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { normal, ones, truncNormal, zeros } from "../ir/init.ts";
import type { LarvSegPsi, PixelHead } from "../dsl/model.ts";
import { transformerBlock } from "./block.ts";
import { layerNorm } from "./norm.ts";
import { gatherClasses } from "./selection.ts";

/** x / ‖x‖ over the last axis (with a floor on the norm so zero vectors stay finite). */
export const l2Normalize = (x: Tensor, eps = 1e-12): Tensor =>
  o.div(x, o.sqrt(o.maximum(o.sum(o.mul(x, x), [x.rank - 1], true), eps * eps)));

/** The LarvSeg classifier's outputs, all [b, n, ·] over the n pixel tokens. */
export interface LarvSegPixels {
  /** z = γ·(s − μ)/√(σ² + ε) + β, [b, n, κ]: the logits. */
  readonly logits: Tensor;
  /** p̂ = ℓ2(x·P_x), [b, n, d]. */
  readonly embeddings: Tensor;
  /** s = p̂·ê, [b, n, κ]: the raw cosine, before the z-score. */
  readonly cosine: Tensor;
}

/**
 * LarvSeg's classifier over pixel tokens [b, n, d] and class features [K, d] (shared) or [b, κ, d]
 * (selected). Projections P_x, P_e ~ N(0, 1/d); γ = 1, β = 0 (β cancels in a softmax, γ acts as an
 * inverse temperature). μ and σ² are taken over the classes of each pixel (biased variance, as LayerNorm).
 */
export const larvSegClassifier = (
  spec: typeof LarvSegPsi.Type,
  pixels: Tensor,
  classFeatures: Tensor,
): LarvSegPixels =>
  pixels.graph.scope("psi", () => {
    const g = pixels.graph;
    const d = pixels.shape[2];
    const scale = normal(d ** -0.5);
    const embeddings = l2Normalize(o.matmul(pixels, o.variable(g, "projPatch", [d, d], scale))); // p̂
    const classes = l2Normalize(o.matmul(classFeatures, o.variable(g, "projClasses", [d, d], scale))); // ê
    const cosine = o.matmul(embeddings, o.mT(classes)); // s [b, n, κ]
    const k = cosine.shape[2];
    const gamma = o.expand(o.variable(g, "gamma", [], ones), [k]);
    const beta = o.expand(o.variable(g, "beta", [], zeros), [k]);
    const logits = o.layerNorm(cosine, gamma, beta, { axis: -1, epsilon: spec.epsilon });
    return { logits, embeddings, cosine };
  });

export const pixelHead = (
  spec: PixelHead,
  pixels: Tensor,
  classFeatures: Tensor,
  indices: Tensor | undefined,
  classes: number,
  train: boolean,
): Tensor =>
  spec._tag === "LarvSeg"
    ? larvSegClassifier(spec, pixels, classFeatures).logits
    : pixels.graph.scope("psi", () => {
      const g = pixels.graph;
      const [b, n, d] = pixels.shape;
      if (spec._tag === "Linear") {
        const w = o.variable(g, "weight", [classes, d], truncNormal(0.02));
        const bias = o.variable(g, "bias", [classes], zeros);
        if (!indices) return o.add(o.matmul(pixels, o.mT(w)), bias);
        return o.add(
          o.matmul(pixels, o.mT(gatherClasses(w, indices))),
          o.unsqueeze(o.gather(bias, indices, 0), 1),
        );
      }
      const cls = classFeatures.rank === 2
        ? o.expand(o.unsqueeze(classFeatures, 0), [b, ...classFeatures.shape])
        : classFeatures;
      const k = cls.shape[1];
      let tokens = o.concat([pixels, cls], 1);
      for (let i = 0; i < spec.layers; i++) {
        tokens = transformerBlock(tokens, {
          heads: spec.heads,
          mlpRatio: spec.mlpRatio,
          dropout: train ? spec.dropout : 0,
          name: `blocks.${i}`,
        });
      }
      tokens = layerNorm(tokens, { name: "norm" });
      const scale = normal(d ** -0.5);
      const patches = o.matmul(o.slice(tokens, [1], [0], [n]), o.variable(g, "projPatch", [d, d], scale));
      const classEmb = o.matmul(
        o.slice(tokens, [1], [n], [n + k]),
        o.variable(g, "projClasses", [d, d], scale),
      );
      return o.matmul(l2Normalize(patches), o.mT(l2Normalize(classEmb)));
    });
