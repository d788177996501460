/**
 * The part of a graph that some outputs need: its live nodes, and the inputs and variables they read.
 * Lowering, printing, FLOP counts and plans all look at this part only.
 */
import type { DType, Shape } from "./dtype.ts";
import { type Graph, GraphError, type Node, type Tensor } from "./graph.ts";
import { type Prim, type Rule, RULES } from "./primitives.ts";

/** A named tensor a graph reads or returns: what a plan feeds, keeps as state or gets back. */
export interface ValueSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

const ruleOf = (prim: Prim) => RULES[prim.op] as unknown as Rule<Prim>;

/** The nodes needed to compute `roots`, in topological (creation) order. */
export const liveNodes = (g: Graph, roots: readonly Tensor[]): Node[] => {
  const live = new Set<number>();
  const stack = roots.map((t) => t.node);
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    for (const t of ruleOf(g.nodes[id].prim).inputs(g.nodes[id].prim)) stack.push(t.node);
  }
  return [...live].sort((a, b) => a - b).map((id) => g.nodes[id]);
};

/** The graph outputs named (default: all of them), failing on a name the graph does not have. */
export const outputTensors = (g: Graph, names?: readonly string[]): { name: string; tensor: Tensor }[] =>
  (names ?? [...g.outputs.keys()]).map((name) => {
    const tensor = g.outputs.get(name);
    if (!tensor) throw new GraphError({ path: name, message: `${name}: no such graph output in ${g.name}` });
    return { name, tensor };
  });

/**
 * What the part of `g` computing `outputs` reads and returns: its inputs (feeds and variables, in
 * creation order, as the ONNX lowering declares them) and its outputs.
 */
export const signature = (
  g: Graph,
  outputs?: readonly string[],
): { inputs: ValueSpec[]; variables: string[]; outputs: ValueSpec[] } => {
  const roots = outputTensors(g, outputs);
  const inputs: ValueSpec[] = [];
  const variables: string[] = [];
  for (const { prim } of liveNodes(g, roots.map((r) => r.tensor))) {
    if (prim.op !== "input" && prim.op !== "variable") continue;
    inputs.push({ name: prim.name, dtype: prim.dtype, shape: prim.shape });
    if (prim.op === "variable") variables.push(prim.name);
  }
  return {
    inputs,
    variables,
    outputs: roots.map(({ name, tensor }) => ({ name, dtype: tensor.dtype, shape: tensor.shape })),
  };
};
