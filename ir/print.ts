/**
 * Prints a graph as text, one node per line, like a jaxpr:
 *
 *     %12:f32[8,64,192] = matmul %10 %11   # psi.block0.mlp.fc1
 *
 * Tensor names are assigned at print time in order of appearance. Backward nodes are tagged `(vjp)`.
 */
import { formatType } from "./dtype.ts";
import type { Graph, Node, Tensor } from "./graph.ts";
import { liveNodes } from "./live.ts";

const field = (v: unknown, name: (t: Tensor) => string): string => {
  if (v && typeof v === "object" && "graph" in v && "id" in v) return name(v as Tensor);
  if (Array.isArray(v)) return `[${v.map((x) => field(x, name)).join(",")}]`;
  if (ArrayBuffer.isView(v)) {
    const values = Array.from(v as unknown as ArrayLike<number | bigint>);
    return values.length <= 8 ? `[${values.join(",")}]` : `<${values.length} values>`;
  }
  if (v && typeof v === "object") return JSON.stringify(v);
  return String(v);
};

/** The text form of `g`, restricted to what its outputs need unless `all` is set. */
export const printGraph = (g: Graph, { all = false }: { all?: boolean } = {}): string => {
  const nodes: readonly Node[] = all ? g.nodes : liveNodes(g, [...g.outputs.values()]);
  const names = new Map<number, string>();
  const name = (t: Tensor) => {
    if (!names.has(t.id)) names.set(t.id, `%${names.size}`);
    return names.get(t.id)!;
  };
  const lines = nodes.map((n) => {
    const { op, ...fields } = n.prim;
    const args = Object.entries(fields)
      .filter(([k, v]) => k !== "dtype" && k !== "shape" && !(k === "trainable" && v === true))
      .map(([k, v]) => {
        if (typeof v === "object" && v !== null && "graph" in v) return field(v, name);
        if (k === "name") return JSON.stringify(v);
        if (k === "init") {
          const { _tag, ...rest } = v as { _tag: string };
          return `${_tag}(${Object.values(rest).join(",")})`;
        }
        return k === "trainable" ? "state" : `${k}=${field(v, name)}`;
      });
    const outs = n.outputs.map((t) => `${name(t)}:${formatType(t)}`).join(" ");
    const where = n.scope ? `   # ${n.scope}${n.backward ? " (vjp)" : ""}` : n.backward ? "   # (vjp)" : "";
    return `${outs} = ${op} ${args.join(" ")}${where}`;
  });
  const outs = [...g.outputs].map(([k, t]) => `${k}=${names.get(t.id) ?? "?"}`);
  return [...lines, `outputs: ${outs.join(", ")}`].join("\n");
};
