/** The pre-norm transformer block shared by the backbone, ξ and ψ: x + Attn(LN(x)), then x + MLP(LN(x)). */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { attention } from "./attention.ts";
import { layerNorm } from "./norm.ts";
import { mlp } from "./mlp.ts";

export interface BlockOptions {
  readonly heads: number;
  readonly mlpRatio?: number;
  readonly dropout?: number;
  readonly epsilon?: number;
  readonly name?: string;
}

export const transformerBlock = (
  x: Tensor,
  { heads, mlpRatio = 4, dropout = 0, epsilon = 1e-5, name = "block" }: BlockOptions,
): Tensor =>
  x.graph.scope(name, () => {
    const d = x.shape[x.rank - 1];
    const h = o.add(x, attention(layerNorm(x, { name: "norm1", epsilon }), { heads, dropout }));
    return o.add(h, mlp(layerNorm(h, { name: "norm2", epsilon }), Math.round(d * mlpRatio), { dropout }));
  });
