/** The transformer MLP: Linear → GELU → dropout → Linear → dropout (timm / Segmenter `FeedForward`). */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { linear } from "./linear.ts";
import { dropout } from "./dropout.ts";

export const mlp = (
  x: Tensor,
  hidden: number,
  { name = "mlp", dropout: rate = 0 }: { name?: string; dropout?: number } = {},
): Tensor =>
  x.graph.scope(name, () => {
    const h = dropout(o.gelu(linear(x, hidden, { name: "fc1" })), rate, { name: "drop1" });
    return dropout(linear(h, x.shape[x.rank - 1], { name: "fc2" }), rate, { name: "drop2" });
  });
