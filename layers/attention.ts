/**
 * Multi-head scaled dot-product attention.
 *
 * Self-attention projects q, k, v with one fused linear (as timm's ViT and Segmenter do); with a
 * `context`, queries come from `x` and keys/values from `context` (cross-attention, Query2Label's decoder).
 * Shapes: x [b, n, d], context [b, m, d] → [b, n, d]; heads split d into h × d/h.
 */
import { GraphError, type Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { linear } from "./linear.ts";
import { dropout } from "./dropout.ts";

export interface AttentionOptions {
  readonly heads: number;
  readonly name?: string;
  /** Keys and values come from here instead of `x` (cross-attention). */
  readonly context?: Tensor;
  /** Keys come from here instead of `context` (e.g. context plus a position code, as in DETR). */
  readonly keyContext?: Tensor;
  readonly dropout?: number;
}

/**
 * [b, n, k·d] → k tensors of [b, h, n, d/h]. A split rather than k slices: the backward pass is then one
 * concat instead of k pads to full size added up.
 */
const splitHeads = (t: Tensor, parts: number, heads: number): Tensor[] => {
  const [b, n, width] = t.shape;
  const dh = width / parts / heads;
  const byPart = o.transpose(o.reshape(t, [b, n, parts, heads, dh]), [2, 0, 3, 1, 4]); // [k, b, h, n, dh]
  if (parts === 1) return [o.reshape(byPart, [b, heads, n, dh])];
  return o.split(byPart, Array(parts).fill(1), 0).map((part) => o.reshape(part, [b, heads, n, dh]));
};

export const attention = (
  x: Tensor,
  { heads, name = "attn", context, keyContext, dropout: rate = 0 }: AttentionOptions,
) =>
  x.graph.scope(name, () => {
    const [b, n, d] = x.shape;
    if (d % heads !== 0) {
      throw new GraphError({
        path: x.graph.path,
        message: `${x.graph.path}: width ${d} is not divisible by heads (${heads})`,
      });
    }
    const [q, k, v] = !context ? splitHeads(linear(x, 3 * d, { name: "qkv" }), 3, heads) : !keyContext
      ? [
        ...splitHeads(linear(x, d, { name: "q" }), 1, heads),
        ...splitHeads(linear(context, 2 * d, { name: "kv" }), 2, heads),
      ]
      : [
        ...splitHeads(linear(x, d, { name: "q" }), 1, heads),
        ...splitHeads(linear(keyContext, d, { name: "k" }), 1, heads),
        ...splitHeads(linear(context, d, { name: "v" }), 1, heads),
      ];
    // Scale q rather than the scores: n·d/h multiplies instead of n·m, forward and backward.
    const scores = o.matmul(o.mul(q, 1 / Math.sqrt(d / heads)), o.mT(k)); // [b, h, n, m]
    const weights = dropout(o.softmax(scores, -1), rate, { name: "attnDrop" });
    const mixed = o.reshape(o.transpose(o.matmul(weights, v), [0, 2, 1, 3]), [b, n, d]);
    return dropout(linear(mixed, d, { name: "proj" }), rate, { name: "projDrop" });
  });
