/**
 * Parameter and FLOP counts per name scope, for the papers' "#params / FLOPs" columns.
 *
 * FLOPs count 2 per multiply-add in matmul and conv and about one per output element for elementwise
 * ops (see each rule's `flops`). Only forward nodes that the graph's outputs need are counted, so a
 * training graph describes the same model as its inference graph.
 */
import { sizeOf } from "./dtype.ts";
import type { Graph, Tensor } from "./graph.ts";
import { liveNodes } from "./live.ts";
import { type Prim, type Rule, RULES } from "./primitives.ts";

export interface ScopeCost {
  readonly scope: string;
  readonly params: number;
  readonly flops: number;
}

/** Costs grouped by the first `depth` segments of each scope path, plus a `total` row. */
export const describe = (
  g: Graph,
  { depth = 2, outputs }: { depth?: number; outputs?: readonly Tensor[] } = {},
): ScopeCost[] => {
  const rows = new Map<string, { params: number; flops: number }>();
  const row = (scope: string) => {
    const key = scope.split(".").slice(0, depth).join(".") || "<root>";
    if (!rows.has(key)) rows.set(key, { params: 0, flops: 0 });
    return rows.get(key)!;
  };
  const nodes = liveNodes(g, outputs ?? [...g.outputs.values()]).filter((n) => !n.backward);
  for (const n of nodes) {
    const prim = n.prim;
    if (prim.op === "variable") {
      if (prim.trainable) row(prim.name.split(".").slice(0, -1).join(".")).params += sizeOf(prim.shape);
      continue;
    }
    const flops = (RULES[prim.op] as unknown as Rule<Prim>).flops(prim, n.outputs);
    if (flops) row(n.scope).flops += flops;
  }
  const out = [...rows].map(([scope, c]) => ({ scope, ...c })).sort((a, b) => a.scope.localeCompare(b.scope));
  out.push({
    scope: "total",
    params: out.reduce((a, r) => a + r.params, 0),
    flops: out.reduce((a, r) => a + r.flops, 0),
  });
  return out;
};
