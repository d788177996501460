/** Layer normalization over the last axis with learned scale (init 1) and shift (init 0). */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { ones, zeros } from "../ir/init.ts";

export const layerNorm = (
  x: Tensor,
  { name = "norm", epsilon = 1e-5 }: { name?: string; epsilon?: number } = {},
) =>
  x.graph.scope(name, () => {
    const d = [x.shape[x.rank - 1]];
    const scale = o.variable(x.graph, "weight", d, ones, { dtype: x.dtype });
    const bias = o.variable(x.graph, "bias", d, zeros, { dtype: x.dtype });
    return o.layerNorm(x, scale, bias, { epsilon });
  });
