/**
 * Reverse-mode automatic differentiation as a transformation of the IR.
 *
 * `grad(loss, wrt)` walks the nodes between `wrt` and `loss` in reverse topological order, asks each
 * primitive's VJP rule for its inputs' cotangents, and accumulates them by addition (fan-out). The
 * backward nodes are appended to the same graph, under the scope of the forward node they differentiate
 * and marked `backward`, so they print, lower and export like any other node. Integer and boolean
 * tensors carry no cotangent; `stopGradient` returns none; a parameter the loss does not depend on gets
 * a zero gradient.
 */
import { isFloat, shapeEquals } from "./dtype.ts";
import { GraphError, type Tensor } from "./graph.ts";
import * as ops from "./ops.ts";
import { type Prim, type Rule, RULES } from "./primitives.ts";

const ruleOf = (prim: Prim) => RULES[prim.op] as unknown as Rule<Prim>;

/** Gradients of the scalar `loss` with respect to each tensor of `wrt`, in order. */
export const grad = (loss: Tensor, wrt: readonly Tensor[]): Tensor[] => {
  const g = loss.graph;
  if (loss.shape.some((d) => d !== 1) || !isFloat(loss.dtype)) {
    throw new GraphError({
      path: g.path,
      message: `grad: loss must be a float scalar, got ${loss.dtype}[${loss.shape}]`,
    });
  }
  // Tensors that depend on some `wrt` through float values.
  const active = new Set<number>(wrt.map((t) => t.id));
  const last = loss.node;
  const first = Math.min(...wrt.map((t) => t.node), last);
  for (let id = first; id <= last; id++) {
    const node = g.nodes[id];
    if (ruleOf(node.prim).inputs(node.prim).some((t) => active.has(t.id))) {
      for (const t of node.outputs) if (isFloat(t.dtype)) active.add(t.id);
    }
  }
  const cotangents = new Map<number, Tensor>([[loss.id, ops.full(g, loss.shape, 1, loss.dtype)]]);
  g.backward(() => {
    for (let id = last; id >= first; id--) {
      const node = g.nodes[id];
      const cts = node.outputs.map((t) => cotangents.get(t.id));
      if (cts.every((c) => c === undefined)) continue;
      const rule = ruleOf(node.prim);
      const inputs = rule.inputs(node.prim);
      if (!inputs.some((t) => active.has(t.id))) continue;
      const inCts = g.atPath(node.scope, () => rule.vjp(node.prim, node.outputs, cts, ops));
      inputs.forEach((t, i) => {
        const ct = inCts[i];
        if (!ct || !active.has(t.id)) return;
        if (!shapeEquals(ct.shape, t.shape) || ct.dtype !== t.dtype) {
          throw new GraphError({
            path: node.scope,
            message:
              `internal: ${node.prim.op} VJP gave ${ct.dtype}[${ct.shape}] for input ${i} of ${t.dtype}[${t.shape}]`,
          });
        }
        const prev = cotangents.get(t.id);
        cotangents.set(t.id, prev ? g.atPath(node.scope, () => ops.add(prev, ct)) : ct);
      });
    }
  });
  return wrt.map((t) => cotangents.get(t.id) ?? g.backward(() => ops.zeros(g, t.shape, t.dtype)));
};
