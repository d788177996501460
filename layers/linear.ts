/** Fully connected layer over the last axis: y = x·W + b, with W stored as [in, out]. */
import type { Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { type Init, truncNormal, zeros } from "../ir/init.ts";

export interface LinearOptions {
  readonly name?: string;
  readonly bias?: boolean;
  /** Weight initializer; default truncated normal, std 0.02 (ViT / Segmenter). */
  readonly init?: Init;
}

export const linear = (
  x: Tensor,
  outFeatures: number,
  { name = "linear", bias = true, init }: LinearOptions = {},
) =>
  x.graph.scope(name, () => {
    const g = x.graph;
    const inFeatures = x.shape[x.rank - 1];
    const w = o.variable(g, "weight", [inFeatures, outFeatures], init ?? truncNormal(0.02), {
      dtype: x.dtype,
    });
    const y = o.matmul(x, w);
    return bias ? o.add(y, o.variable(g, "bias", [outFeatures], zeros, { dtype: x.dtype })) : y;
  });
