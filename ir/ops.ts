/**
 * The tracing API: one function per primitive, plus a few compositions every layer needs.
 *
 * Each function appends a node to the graph its operands belong to, inferring the output type on the
 * spot. A violation throws `GraphError` naming the scope path, the op and its operand types, e.g.
 * `model.psi.block0.attn: matmul(f32[2,16,64], f32[32,64]): inner dimensions differ (64 vs 32)`.
 * Numbers may stand in for tensors in arithmetic; they become scalars of the other operand's dtype.
 */
import { type DType, formatType, hostArray, normalizeAxis, type Shape, sizeOf } from "./dtype.ts";
import {
  type BinaryOp,
  type CompareOp,
  type ConvGeometry,
  type Graph,
  GraphError,
  type Prim,
  Tensor,
  type UnaryOp,
} from "./graph.ts";
import type { Init } from "./init.ts";
import { InferError, type Rule, RULES } from "./primitives.ts";

type Operand = Tensor | number;

/** The graph that the tensor operands belong to (all of them must share one). */
export const graphOf = (...xs: readonly Operand[]): Graph => {
  const tensors = xs.filter((x): x is Tensor => x instanceof Tensor);
  if (tensors.length === 0) {
    throw new GraphError({ path: "", message: "an op needs at least one tensor operand" });
  }
  const g = tensors[0].graph;
  if (tensors.some((t) => t.graph !== g)) {
    throw new GraphError({
      path: g.path,
      message: `${g.path || "<root>"}: operands belong to different graphs`,
    });
  }
  return g;
};

/** Infers the output types of `prim`, appends it to `g`, and returns its outputs. */
export const emit = (g: Graph, prim: Prim): Tensor[] => {
  const rule = RULES[prim.op] as unknown as Rule<Prim>;
  const operands = rule.inputs(prim);
  if (operands.some((t) => t.graph !== g)) {
    throw new GraphError({
      path: g.path,
      message: `${g.path || "<root>"}: ${prim.op}: operand from another graph`,
    });
  }
  try {
    return g.addNode(prim, rule.infer(prim));
  } catch (e) {
    if (!(e instanceof InferError)) throw e;
    const where = g.path || "<root>";
    throw new GraphError({
      path: g.path,
      message: `${where}: ${prim.op}(${operands.map(formatType).join(", ")}): ${e.message}`,
    });
  }
};

const one = (g: Graph, prim: Prim): Tensor => emit(g, prim)[0];

const lift = (
  x: Operand,
  like: Tensor,
): Tensor => (x instanceof Tensor ? x : scalar(like.graph, x, like.dtype));

const pairOf = (a: Operand, b: Operand): [Graph, Tensor, Tensor] => {
  const g = graphOf(a, b);
  const like = (a instanceof Tensor ? a : b) as Tensor;
  return [g, lift(a, like), lift(b, like)];
};

// ------------------------------------------------------------------------------------------------
// Sources

/** A graph input fed by the caller on every run (images, labels, learning rate …). */
export const input = (g: Graph, name: string, shape: Shape, dtype: DType = "float32"): Tensor => {
  const t = one(g, { op: "input", name, dtype, shape });
  g.claimName(name, t);
  return t;
};

/**
 * A named variable, qualified by the current scope: a parameter (trainable) or other state carried
 * between runs (optimizer moments, running statistics, memory banks).
 */
export const variable = (
  g: Graph,
  name: string,
  shape: Shape,
  init: Init,
  { dtype = "float32", trainable = true }: { dtype?: DType; trainable?: boolean } = {},
): Tensor => {
  const full = g.qualify(name);
  const t = one(g, { op: "variable", name: full, dtype, shape, init, trainable: trainable && !g.isFrozen });
  g.claimName(full, t);
  return t;
};

export const constant = (
  g: Graph,
  values: ArrayLike<number>,
  shape: Shape,
  dtype: DType = "float32",
): Tensor => one(g, { op: "constant", value: hostArray(dtype, values), dtype, shape });

export const scalar = (g: Graph, value: number, dtype: DType = "float32"): Tensor =>
  constant(g, [value], [], dtype);

/** A tensor of `shape` filled with `value` (a broadcast scalar: no memory until used). */
export const full = (g: Graph, shape: Shape, value: number, dtype: DType = "float32"): Tensor =>
  expand(scalar(g, value, dtype), shape);

export const zeros = (g: Graph, shape: Shape, dtype: DType = "float32"): Tensor => full(g, shape, 0, dtype);

// ------------------------------------------------------------------------------------------------
// Linear algebra and elementwise

/** Batched matrix product over the last two axes (leading axes broadcast). */
export const matmul = (a: Tensor, b: Tensor): Tensor => one(graphOf(a, b), { op: "matmul", a, b });

const binary = (op: BinaryOp) => (a: Operand, b: Operand): Tensor => {
  const [g, x, y] = pairOf(a, b);
  return one(g, { op, a: x, b: y });
};
export const add = binary("add");
export const sub = binary("sub");
export const mul = binary("mul");
export const div = binary("div");
export const pow = binary("pow");
export const maximum = binary("max");
export const minimum = binary("min");

const comparison = (op: CompareOp) => (a: Operand, b: Operand): Tensor => {
  const [g, x, y] = pairOf(a, b);
  return one(g, { op, a: x, b: y });
};
export const equal = comparison("equal");
export const less = comparison("less");
export const greater = comparison("greater");
export const lessOrEqual = comparison("lessOrEqual");
export const greaterOrEqual = comparison("greaterOrEqual");
export const and = (a: Tensor, b: Tensor): Tensor => one(graphOf(a, b), { op: "and", a, b });
export const or = (a: Tensor, b: Tensor): Tensor => one(graphOf(a, b), { op: "or", a, b });
export const not = (x: Tensor): Tensor => one(x.graph, { op: "not", x });

const unary = (op: UnaryOp) => (x: Tensor): Tensor => one(x.graph, { op, x });
export const neg = unary("neg");
export const exp = unary("exp");
export const log = unary("log");
export const sqrt = unary("sqrt");
export const erf = unary("erf");
export const tanh = unary("tanh");
export const sigmoid = unary("sigmoid");
export const relu = unary("relu");
export const abs = unary("abs");
export const sign = unary("sign");
export const gelu = (x: Tensor, approximate: "none" | "tanh" = "none"): Tensor =>
  one(x.graph, { op: "gelu", x, approximate });

export const softmax = (x: Tensor, axis = -1): Tensor => one(x.graph, { op: "softmax", x, axis });
export const logSoftmax = (x: Tensor, axis = -1): Tensor => one(x.graph, { op: "logSoftmax", x, axis });

/** Layer normalization over axes [axis, rank) with affine `scale` and `bias` of that shape. */
export const layerNorm = (
  x: Tensor,
  scale: Tensor,
  bias: Tensor,
  { axis = -1, epsilon = 1e-5 }: { axis?: number; epsilon?: number } = {},
): Tensor => emit(graphOf(x, scale, bias), { op: "layerNorm", x, scale, bias, axis, epsilon })[0];

export const where = (cond: Tensor, a: Operand, b: Operand): Tensor => {
  const [, x, y] = pairOf(a, b);
  return one(graphOf(cond, x), { op: "where", cond, a: x, b: y });
};

export const cast = (
  x: Tensor,
  to: DType,
): Tensor => (x.dtype === to ? x : one(x.graph, { op: "cast", x, to }));

export const clip = (x: Tensor, min?: number, max?: number): Tensor =>
  one(x.graph, { op: "clip", x, min, max });

/** min(max(x, 0), 6) (MobileNet's activation): one ONNX Clip, gradient 1 on [0, 6], else 0. */
export const relu6 = (x: Tensor): Tensor => clip(x, 0, 6);

export const stopGradient = (x: Tensor): Tensor => one(x.graph, { op: "stopGradient", x });
export const identity = (x: Tensor): Tensor => one(x.graph, { op: "identity", x });

// ------------------------------------------------------------------------------------------------
// Reductions

const allAxes = (x: Tensor) => x.shape.map((_, i) => i);

export const sum = (x: Tensor, axes: readonly number[] = allAxes(x), keepDims = false): Tensor =>
  one(x.graph, { op: "reduceSum", x, axes, keepDims });
export const mean = (x: Tensor, axes: readonly number[] = allAxes(x), keepDims = false): Tensor =>
  one(x.graph, { op: "reduceMean", x, axes, keepDims });
export const max = (x: Tensor, axes: readonly number[] = allAxes(x), keepDims = false): Tensor =>
  one(x.graph, { op: "reduceMax", x, axes, keepDims });
export const argMax = (x: Tensor, axis = -1, keepDims = false): Tensor =>
  one(x.graph, { op: "argMax", x, axis, keepDims });

// ------------------------------------------------------------------------------------------------
// Shape manipulation

/** Reshape; one dimension may be -1 (inferred). */
export const reshape = (x: Tensor, shape: readonly number[]): Tensor => {
  const known = shape.filter((d) => d !== -1);
  let dims = shape;
  if (known.length === shape.length - 1) {
    const rest = sizeOf(x.shape) / sizeOf(known);
    dims = shape.map((d) => (d === -1 ? rest : d));
  }
  return one(x.graph, { op: "reshape", x, shape: dims });
};

export const transpose = (x: Tensor, perm: readonly number[]): Tensor =>
  one(x.graph, { op: "transpose", x, perm });

/** Swaps the last two axes (matrix transpose of a batch of matrices). */
export const mT = (x: Tensor): Tensor => {
  const perm = allAxes(x);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
};

export const concat = (xs: readonly Tensor[], axis: number): Tensor =>
  one(graphOf(...xs), { op: "concat", xs, axis });

/** Consecutive pieces of `sizes` along `axis` (they must add up to its length). */
export const split = (x: Tensor, sizes: readonly number[], axis: number): Tensor[] =>
  emit(x.graph, { op: "split", x, axis, sizes });

/** Python-style slicing of the listed axes; `steps` default to 1. */
export const slice = (
  x: Tensor,
  axes: readonly number[],
  starts: readonly number[],
  ends: readonly number[],
  steps: readonly number[] = axes.map(() => 1),
): Tensor => one(x.graph, { op: "slice", x, axes, starts, ends, steps });

/** Constant padding; `pads` lists all begins then all ends (ONNX layout). */
export const pad = (x: Tensor, pads: readonly number[], value = 0): Tensor =>
  one(x.graph, { op: "pad", x, pads, value });

export const expand = (x: Tensor, shape: Shape): Tensor => one(x.graph, { op: "expand", x, shape });

/** Inserts a size-1 axis at `axis` (a reshape). */
export const unsqueeze = (x: Tensor, axis: number): Tensor => {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
};

// ------------------------------------------------------------------------------------------------
// Indexing

export const gather = (x: Tensor, indices: Tensor, axis = 0): Tensor =>
  one(graphOf(x, indices), { op: "gather", x, indices, axis });
export const gatherElements = (x: Tensor, indices: Tensor, axis: number): Tensor =>
  one(graphOf(x, indices), { op: "gatherElements", x, indices, axis });
export const scatterElements = (
  x: Tensor,
  indices: Tensor,
  updates: Tensor,
  axis: number,
  reduction: "none" | "add" = "none",
): Tensor =>
  one(graphOf(x, indices, updates), { op: "scatterElements", x, indices, updates, axis, reduction });
export const oneHot = (indices: Tensor, depth: number, dtype: DType = "float32"): Tensor =>
  one(indices.graph, { op: "oneHot", indices, depth, dtype });

/** The k largest (or smallest) entries along `axis`, sorted, with their int64 indices. */
export const topK = (
  x: Tensor,
  k: number,
  axis = -1,
  largest = true,
): { values: Tensor; indices: Tensor } => {
  const [values, indices] = emit(x.graph, { op: "topK", x, k, axis, largest });
  return { values, indices };
};

// ------------------------------------------------------------------------------------------------
// Spatial

/** Bilinear resize of an NCHW tensor's last two axes (PyTorch `align_corners=False`). */
export const resize = (x: Tensor, height: number, width: number): Tensor =>
  one(x.graph, { op: "resize", x, height, width });

/**
 * 2-D convolution, NCHW input x [n, c, h, w], OIHW weight w [o, c / group, kh, kw] → [n, o, ho, wo].
 * `pads` is [top, left, bottom, right] (see `samePads` for TensorFlow's "SAME"); `group` = c with o a
 * multiple of c is a depthwise convolution. `bias` [o] is added to each output channel by the Conv itself.
 */
export const conv = (
  x: Tensor,
  w: Tensor,
  { strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], group = 1, bias }:
    & Partial<ConvGeometry>
    & { readonly bias?: Tensor } = {},
): Tensor =>
  one(graphOf(x, w, ...(bias ? [bias] : [])), {
    op: "conv",
    x,
    w,
    strides,
    pads,
    dilations,
    group,
    ...(bias ? { bias } : {}),
  });

/**
 * The transpose (adjoint) of `conv(·, w)` with the same geometry and groups: [n, o, ho, wo] →
 * [n, c, h, w], with `size` = [h, w] the conv input's spatial size (the gradient of a conv with respect
 * to its input). `w` is the conv's weight, [o, c / group, kh, kw].
 */
export const convTranspose = (
  x: Tensor,
  w: Tensor,
  { strides = [1, 1], pads = [0, 0, 0, 0], dilations = [1, 1], group = 1, size }:
    & Partial<ConvGeometry>
    & { readonly size: readonly [number, number] },
): Tensor => one(graphOf(x, w), { op: "convTranspose", x, w, strides, pads, dilations, group, size });

/**
 * TensorFlow's "SAME" padding of one conv axis pair: the output has ceil(size / stride) positions and the
 * padding this needs is split with the odd one at the end, e.g. a stride-2 3×3 conv of a 224×224 input
 * pads [0, 0, 1, 1]. Returns [top, left, bottom, right], the layout `conv` takes.
 */
export const samePads = (
  size: readonly [number, number],
  kernel: readonly [number, number],
  strides: readonly [number, number] = [1, 1],
  dilations: readonly [number, number] = [1, 1],
): [number, number, number, number] => {
  const total = [0, 1].map((i) => {
    const span = dilations[i] * (kernel[i] - 1) + 1;
    const out = Math.ceil(size[i] / strides[i]);
    return Math.max((out - 1) * strides[i] + span - size[i], 0);
  });
  const begin = total.map((t) => Math.floor(t / 2));
  return [begin[0], begin[1], total[0] - begin[0], total[1] - begin[1]];
};

// ------------------------------------------------------------------------------------------------
// Compositions used by gradient rules and layers

/**
 * Sums a broadcast result back to `shape` (the reverse of broadcasting): drop leading axes, then sum the
 * axes where `shape` has 1. The one place VJPs undo broadcasting.
 */
export const sumTo = (x: Tensor, shape: Shape): Tensor => {
  const lead = x.rank - shape.length;
  const axes = x.shape.map((_, i) => i).filter((i) =>
    i < lead || (shape[i - lead] === 1 && x.shape[i] !== 1)
  );
  if (axes.length === 0) return x;
  const summed = sum(x, axes, true);
  return lead > 0 || summed.rank !== shape.length ? reshape(summed, shape) : summed;
};

/** Inverted dropout with an explicit keep-mask (1 = keep): x · mask / (1 − ratio). */
export const dropout = (x: Tensor, mask: Tensor, ratio: number): Tensor =>
  ratio === 0 ? x : mul(mul(x, cast(mask, x.dtype)), 1 / (1 - ratio));

/** A normalized, non-negative axis. */
export const axisOf = (x: Tensor, axis: number): number => {
  const a = normalizeAxis(axis, x.rank);
  if (a === undefined) {
    throw new GraphError({ path: x.graph.path, message: `axis ${axis} out of range for rank ${x.rank}` });
  }
  return a;
};
