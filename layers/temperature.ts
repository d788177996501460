/**
 * τ: how ψ's rank-ordered logits [b, n, κ] are scaled before the softmax over ranks.
 *
 *  - Shared: logits / τ with one learnable τ = exp(θ) (θ keeps τ positive).
 *  - RankAdaptive: logits_r / τ_r with one τ_r = exp(θ_r) per rank position (the paper's Eq. 3).
 *  - RankLayerNorm: LayerNorm over the κ logits with per-rank γ_r, β_r (the official code).
 *  - None: the logits as they are (LarvSeg's classifier scales its own z-scores).
 * Invalid oracle slots (`valid` false) are excluded from the normalization and set to −100.
 */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { constantInit, ones, zeros } from "../ir/init.ts";
import type { Temperature } from "../dsl/model.ts";

export const MASKED_LOGIT = -100;

/** LayerNorm over the last axis counting only entries where mask = 1 (mask [b, 1, κ]). */
const maskedLayerNorm = (x: Tensor, mask: Tensor, gamma: Tensor, beta: Tensor, epsilon = 1e-5): Tensor => {
  const n = o.maximum(o.sum(mask, [2], true), 1);
  const mean = o.div(o.sum(o.mul(x, mask), [2], true), n);
  const centered = o.mul(o.sub(x, mean), mask);
  const variance = o.div(o.sum(o.mul(centered, centered), [2], true), n);
  return o.add(o.mul(o.div(centered, o.sqrt(o.add(variance, epsilon))), gamma), beta);
};

export const applyTemperature = (spec: Temperature, logits: Tensor, valid?: Tensor): Tensor =>
  logits.graph.scope("temperature", () => {
    const g = logits.graph;
    const k = logits.shape[2];
    const mask = valid && o.cast(o.unsqueeze(valid, 1), logits.dtype); // [b, 1, κ]
    let out: Tensor;
    switch (spec._tag) {
      case "Shared":
        out = o.mul(logits, o.exp(o.neg(o.variable(g, "logTau", [], constantInit(Math.log(spec.init))))));
        break;
      case "RankAdaptive":
        out = o.mul(logits, o.exp(o.neg(o.variable(g, "logTau", [k], constantInit(Math.log(spec.init))))));
        break;
      case "RankLayerNorm": {
        const gamma = o.variable(g, "weight", [k], ones), beta = o.variable(g, "bias", [k], zeros);
        out = mask ? maskedLayerNorm(logits, mask, gamma, beta) : o.layerNorm(logits, gamma, beta);
        break;
      }
      case "None":
        out = logits;
        break;
    }
    return valid ? o.where(o.unsqueeze(valid, 1), out, MASKED_LOGIT) : out;
  });
