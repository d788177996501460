/**
 * Name tables for the parity checks: which official parameter (a PyTorch `state_dict` key) each kappa
 * variable takes, and how its layout changes. The same rule moves the official gradient of that
 * parameter, so parameters and gradients are compared in kappa's layout.
 *
 * A table is data: rules tried in order, the first whose `to` matches a kappa variable wins. `to` ending
 * in "." is a prefix: the rest of the kappa name is appended to `from` (`xi.block.` ← `block.` maps
 * `xi.block.attn.qkv.weight` to `block.attn.qkv.weight`); otherwise the names match exactly.
 *
 * Layouts: "torch" for nn.Linear / 1×1 conv weights ([out, in] or [out, in, 1, 1] → kappa's [in, out])
 * and 1-D tensors (biases, LayerNorm weights; unchanged); "same" for tensors used as they are (class
 * embeddings, x·P projections, GroupWiseLinear), whose shapes may differ only by axes of size 1. `part:
 * [i, n]` takes the i-th of n equal blocks of the official tensor's first axis first (nn.MultiheadAttention's
 * packed q/k/v `in_proj_*`).
 *
 * Mapping is strict and reports every problem at once: a kappa variable no rule maps, an official
 * tensor that is missing or left over, a shape that does not fit, one line each.
 */
import type { Graph } from "../ir/graph.ts";
import type { Reference } from "./reference_data.ts";

export interface NameRule {
  readonly to: string;
  readonly from: string;
  readonly layout: "torch" | "same";
  readonly part?: readonly [number, number];
}

export interface NameTable {
  readonly name: string;
  readonly rules: readonly NameRule[];
  /** Official parameters kappa does not take, each with the reason. */
  readonly unused?: Readonly<Record<string, string>>;
  /** kappa variables without an official counterpart (left at their initial value), with the reason. */
  readonly kappaOnly?: Readonly<Record<string, string>>;
}

/** Which official tensor a kappa variable takes, and how. */
export interface Mapped {
  readonly kappa: string;
  readonly source: string;
  readonly rule: NameRule;
}

const matchRule = (rule: NameRule, name: string): string | undefined =>
  rule.to.endsWith(".")
    ? (name.startsWith(rule.to) ? rule.from + name.slice(rule.to.length) : undefined)
    : (name === rule.to ? rule.from : undefined);

/** The official tensor `data` [shape] in kappa's layout for a variable of `target` shape, or why not. */
export const toKappaLayout = (
  data: Float64Array,
  shape: readonly number[],
  target: readonly number[],
  rule: NameRule,
): Float64Array | string => {
  let [d, s] = [data, [...shape]];
  if (rule.part) {
    const [i, n] = rule.part;
    if (s[0] % n !== 0) return `first axis ${s[0]} does not split into ${n}`;
    const rows = s[0] / n, stride = d.length / s[0];
    d = d.slice(i * rows * stride, (i + 1) * rows * stride);
    s = [rows, ...s.slice(1)];
  }
  const size = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);
  const squeezed = (xs: readonly number[]) => xs.filter((x) => x !== 1).join(",");
  const describe = `official [${s}] → kappa [${target}]`;
  if (rule.layout === "same") {
    return squeezed(s) === squeezed(target) && size(s) === size(target) ? d : `shape mismatch: ${describe}`;
  }
  if (s.length === 1) return target.length === 1 && target[0] === s[0] ? d : `shape mismatch: ${describe}`;
  const matrix = s.length === 2 || (s.length === 4 && s[2] === 1 && s[3] === 1);
  if (!matrix) return `layout "torch" needs [out, in] or [out, in, 1, 1]: ${describe}`;
  const [out, inn] = s;
  if (target.length !== 2 || target[0] !== inn || target[1] !== out) return `shape mismatch: ${describe}`;
  const t = new Float64Array(d.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) t[i * out + o] = d[o * inn + i];
  return t;
};

/** kappa's trainable variables in graph order: name and shape. */
export const variablesOf = (g: Graph): { name: string; shape: readonly number[] }[] =>
  g.nodes.flatMap((n) =>
    n.prim.op === "variable" && n.prim.trainable ? [{ name: n.prim.name, shape: n.prim.shape }] : []
  );

/**
 * Maps every kappa variable of `g` to an official tensor `<prefix><key>` of `ref`: the values in
 * kappa's layout, and the mapping (for moving gradients). Throws one error listing every problem.
 */
export const mapParameters = (
  g: Graph,
  ref: Reference,
  prefix: string,
  table: NameTable,
): { values: Map<string, Float64Array>; mapped: Mapped[] } => {
  const problems: string[] = [];
  const values = new Map<string, Float64Array>();
  const mapped: Mapped[] = [];
  const used = new Set<string>();
  for (const v of variablesOf(g)) {
    if (table.kappaOnly?.[v.name] !== undefined) continue;
    const rule = table.rules.find((r) => matchRule(r, v.name) !== undefined);
    if (!rule) {
      problems.push(`${v.name}: no rule of ${table.name} maps it`);
      continue;
    }
    const source = matchRule(rule, v.name)!;
    if (!ref.has(prefix + source)) {
      problems.push(`${v.name}: official tensor "${source}" is missing`);
      continue;
    }
    used.add(source);
    const t = ref.get(prefix + source);
    const data = t.data instanceof Float64Array
      ? toKappaLayout(t.data, t.shape, v.shape, rule)
      : "holds integers";
    if (typeof data === "string") problems.push(`${v.name} ← ${source}: ${data}`);
    else {
      values.set(v.name, data);
      mapped.push({ kappa: v.name, source, rule });
    }
  }
  for (const key of ref.under(prefix)) {
    if (!used.has(key) && table.unused?.[key] === undefined) {
      problems.push(`${key}: official tensor that no kappa variable takes (and not listed as unused)`);
    }
  }
  if (problems.length) throw new Error(`${table.name}:\n  ${problems.join("\n  ")}`);
  return { values, mapped };
};
