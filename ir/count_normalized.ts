/**
 * Losses divided by a data-dependent count (pixel cross-entropy over the labelled pixels, LarvSeg's losses
 * over the labelled (image, class) pairs), made exact under data parallelism.
 *
 * A loss normalized by a constant (a batch mean) is exact when N ranks average their gradients: the mean
 * over ranks of ∇(S_r / (B·c)) is ∇(Σ_r S_r / (N·B·c)), the gradient of the N·B batch. A loss normalized
 * by its own count is not: the mean of S_r / C_r is not Σ S_r / Σ C_r. So a rank divides by its share of
 * the global count instead, C̄ = max(Σ_r C_r, 1) / N, fed to the graph: then the mean over ranks of
 * ∇(S_r / C̄) = ∇(Σ S_r / max(Σ C_r, 1)) — the one-process gradient at the global batch, up to float
 * summation order; and with one rank C̄ = max(C, 1), the ordinary loss.
 *
 * In a data-parallel graph (`new Graph(name, { dataParallel: true })`) a site outputs its local count as
 * `count:<site>` and reads its share as the scalar input `countShare:<site>`. The counts depend on labels
 * (and, under a top-κ selection, on the selection), so the plan runs the part of the graph computing
 * them first, sums them over the ranks, then runs the gradients (interpret/data_parallel.ts). An ordinary
 * graph divides by max(count, 1) itself, with the same nodes as before this mechanism existed.
 */
import type { Tensor } from "./graph.ts";
import * as o from "./ops.ts";

/** Output prefix of a site's local count (data-parallel graphs). */
export const COUNT = "count:";
/** Input prefix of a site's share of the global count, max(Σ counts, 1) / ranks (data-parallel graphs). */
export const COUNT_SHARE = "countShare:";

/**
 * `sum / max(count, 1)`, or in a data-parallel graph `sum / countShare:<site>` with `count:<site>` output.
 * `site` is qualified by the current scope (e.g. `loss.labelledPixels`); `count` is a float scalar.
 */
export const divideByCount = (sum: Tensor, count: Tensor, site: string): Tensor => {
  const g = sum.graph;
  if (!g.dataParallel) return o.div(sum, o.maximum(count, 1));
  const name = g.qualify(site);
  g.output(`${COUNT}${name}`, count);
  return o.div(sum, o.input(g, `${COUNT_SHARE}${name}`, [], sum.dtype));
};

/** The count sites of a data-parallel graph: their names without the prefix. */
export const countSites = (outputs: Iterable<string>): string[] =>
  [...outputs].filter((n) => n.startsWith(COUNT)).map((n) => n.slice(COUNT.length));
