/**
 * The primitives of the IR and their one rule table.
 *
 * A primitive is a name plus typed, named fields (`{ op: "matmul", a, b }`; the `Prim` union is declared
 * in `graph.ts`, with the tensors and nodes that refer to it). Every primitive has exactly
 * one entry in `RULES`, typed as a record over all ops so a missing rule is a compile error, holding:
 *   - `inputs`: the tensor operands, in a fixed order (the order of VJP results);
 *   - `infer`:  output dtypes and shapes (throws `InferError`; `ops.ts` adds the op, operands and scope);
 *   - `lower`:  the ONNX nodes that compute it (opset 21);
 *   - `vjp`:    the cotangents of the inputs given those of the outputs, built from ordinary ops (the
 *               `Builder`, i.e. `ops.ts`), so the backward pass is ordinary IR; `undefined` for
 *               non-differentiable inputs;
 *   - `flops`:  floating-point operations (2 per multiply-add in matmul/conv, 1 per output element for
 *               elementwise ops), for `describe`.
 * Compositions (cross-entropy, L2-normalize, bilinear upsampling, dropout …) live in `ops.ts`/`layers/` and
 * get their gradients from these rules.
 */
import {
  broadcastShapes,
  type DType,
  formatType,
  isFloat,
  normalizeAxis,
  ONNX_DTYPE,
  type Shape,
  shapeEquals,
  sizeOf,
  type TensorType,
} from "./dtype.ts";
import { argMaxOnDevice, RANK_TOPK_LIMIT, topKOnDevice } from "./device_indices.ts";
import type {
  BinaryOp,
  CompareOp,
  ConvGeometry,
  Graph,
  LogicOp,
  Op,
  Prim,
  PrimOf,
  ReduceOp,
  Tensor,
  UnaryOp,
} from "./graph.ts";

// The union itself lives with the graph that holds it; importers of these names from here keep working.
export type { BinaryOp, CompareOp, ConvGeometry, LogicOp, Op, Prim, PrimOf, ReduceOp, UnaryOp };

/** A shape or dtype violation found by a rule's `infer`. */
export class InferError extends Error {}

const fail = (message: string): never => {
  throw new InferError(message);
};

/** ONNX attribute values, tagged by kind. */
export type Attr =
  | { readonly int: number }
  | { readonly float: number }
  | { readonly ints: readonly number[] }
  | { readonly floats: readonly number[] }
  | { readonly string: string };

/** What a rule's `lower` can do: name operands, emit ONNX nodes and constants. */
/**
 * The provider a graph is lowered for. `webgpu` avoids ops that ONNX Runtime's WebGPU provider leaves to
 * the CPU (each such node costs device↔host copies inside a step), with ops that compute the same values.
 */
export type LowerTarget = "cpu" | "webgpu";

export interface LowerContext {
  readonly target: LowerTarget;
  /**
   * The NCHWc block size of the ONNX Runtime that will run the graph (`runtime/nchwc.ts` asks it), when
   * the lowering may use its NCHWc kernels (`NCHWC_DOMAIN`) for what the CPU EP runs slowly otherwise.
   * Unset for exports and other providers: their graphs stay plain ONNX.
   */
  readonly nchwcBlock?: number;
  /** The ONNX value name of an operand. */
  readonly name: (t: Tensor) => string;
  /** Names of this node's outputs. */
  readonly out: readonly string[];
  /** Whether anything consumes each output (a rule may skip computing optional unused outputs). */
  readonly used: readonly boolean[];
  readonly node: (
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attrs?: Record<string, Attr>,
    /** An operator set other than ONNX's own (`NCHWC_DOMAIN`). */
    domain?: string,
  ) => void;
  /** A fresh intermediate value name. */
  readonly fresh: (hint: string) => string;
  /** A constant tensor (an initializer). */
  readonly constant: (values: ArrayLike<number>, dtype: DType, shape: Shape) => string;
  /** An int64 constant (1-D unless `shape` is given). */
  readonly int64: (values: readonly number[], shape?: Shape) => string;
  /** A scalar (rank-0) constant of `dtype`. */
  readonly scalar: (value: number, dtype: DType) => string;
  /**
   * A shape operand for Reshape/Expand. This is the one place where an export with a dynamic batch
   * dimension substitutes the runtime batch size for a leading dimension equal to the traced one.
   */
  readonly shape: (dims: Shape) => string;
}

type Cotangent = Tensor | undefined;

type Operand = Tensor | number;

/**
 * The op builders a VJP may call: the functions of `ops.ts` of the same names (autodiff passes that
 * module, and the compiler checks it against this view). Declared here rather than imported because
 * `ops.ts` builds on this rule table; a VJP that needs another op adds its signature here.
 */
export interface Builder {
  readonly graphOf: (...xs: readonly Operand[]) => Graph;
  readonly constant: (g: Graph, values: ArrayLike<number>, shape: Shape, dtype?: DType) => Tensor;
  readonly zeros: (g: Graph, shape: Shape, dtype?: DType) => Tensor;
  readonly add: (a: Operand, b: Operand) => Tensor;
  readonly sub: (a: Operand, b: Operand) => Tensor;
  readonly mul: (a: Operand, b: Operand) => Tensor;
  readonly div: (a: Operand, b: Operand) => Tensor;
  readonly pow: (a: Operand, b: Operand) => Tensor;
  readonly equal: (a: Operand, b: Operand) => Tensor;
  readonly greater: (a: Operand, b: Operand) => Tensor;
  readonly lessOrEqual: (a: Operand, b: Operand) => Tensor;
  readonly greaterOrEqual: (a: Operand, b: Operand) => Tensor;
  readonly and: (a: Tensor, b: Tensor) => Tensor;
  readonly or: (a: Tensor, b: Tensor) => Tensor;
  readonly where: (cond: Tensor, a: Operand, b: Operand) => Tensor;
  readonly neg: (x: Tensor) => Tensor;
  readonly exp: (x: Tensor) => Tensor;
  readonly log: (x: Tensor) => Tensor;
  readonly erf: (x: Tensor) => Tensor;
  readonly tanh: (x: Tensor) => Tensor;
  readonly sign: (x: Tensor) => Tensor;
  readonly cast: (x: Tensor, to: DType) => Tensor;
  readonly matmul: (a: Tensor, b: Tensor) => Tensor;
  readonly mT: (x: Tensor) => Tensor;
  readonly sum: (x: Tensor, axes?: readonly number[], keepDims?: boolean) => Tensor;
  readonly mean: (x: Tensor, axes?: readonly number[], keepDims?: boolean) => Tensor;
  readonly sumTo: (x: Tensor, shape: Shape) => Tensor;
  readonly reshape: (x: Tensor, shape: readonly number[]) => Tensor;
  readonly transpose: (x: Tensor, perm: readonly number[]) => Tensor;
  readonly expand: (x: Tensor, shape: Shape) => Tensor;
  readonly concat: (xs: readonly Tensor[], axis: number) => Tensor;
  readonly slice: (
    x: Tensor,
    axes: readonly number[],
    starts: readonly number[],
    ends: readonly number[],
    steps?: readonly number[],
  ) => Tensor;
  readonly pad: (x: Tensor, pads: readonly number[], value?: number) => Tensor;
  readonly gatherElements: (x: Tensor, indices: Tensor, axis: number) => Tensor;
  readonly scatterElements: (
    x: Tensor,
    indices: Tensor,
    updates: Tensor,
    axis: number,
    reduction?: "none" | "add",
  ) => Tensor;
  readonly conv: (x: Tensor, w: Tensor, geometry?: Partial<ConvGeometry>) => Tensor;
  readonly convTranspose: (
    x: Tensor,
    w: Tensor,
    geometry: Partial<ConvGeometry> & { readonly size: readonly [number, number] },
  ) => Tensor;
}

export interface Rule<P extends Prim> {
  readonly inputs: (p: P) => readonly Tensor[];
  readonly infer: (p: P) => readonly TensorType[];
  readonly lower: (p: P, ctx: LowerContext) => void;
  readonly vjp: (
    p: P,
    outs: readonly Tensor[],
    cts: readonly Cotangent[],
    b: Builder,
  ) => readonly Cotangent[];
  readonly flops: (p: P, outs: readonly Tensor[]) => number;
}

type RuleTable = { readonly [K in Op]: Rule<PrimOf<K>> };

// ---------------------------------------------------------------------------------------------------
// Shared checks and helpers

const requireFloat = (t: TensorType, what = "input") =>
  isFloat(t.dtype) || fail(`${what} must be float32 or float64, got ${formatType(t)}`);

const requireSameDtype = (a: TensorType, b: TensorType) =>
  a.dtype === b.dtype || fail(`dtypes differ: ${formatType(a)} and ${formatType(b)}`);

const requireIndex = (t: TensorType, what = "indices") =>
  t.dtype === "int64" || t.dtype === "int32" || fail(`${what} must be int64 or int32, got ${formatType(t)}`);

const broadcastOrFail = (...ts: TensorType[]): number[] =>
  broadcastShapes(...ts.map((t) => t.shape)) ??
    fail(`shapes do not broadcast: ${ts.map(formatType).join(", ")}`);

const axisOrFail = (axis: number, rank: number): number =>
  normalizeAxis(axis, rank) ?? fail(`axis ${axis} is out of range for rank ${rank}`);

const size = (t: TensorType) => sizeOf(t.shape);
const noFlops = () => 0;
const elementwise = (_: unknown, outs: readonly Tensor[]) => size(outs[0]);
const nonDifferentiable = (p: Prim): Cotangent[] => RULES[p.op].inputs(p as never).map(() => undefined);

/** Reduced shape: `axes` removed, or kept as 1 with `keepDims`. */
const reducedShape = (shape: Shape, axes: readonly number[], keepDims: boolean): number[] =>
  keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));

/** Cotangent for an op computed independently per element of a broadcast (a, b) pair. */
const binary = (
  onnx: string,
  dtypeCheck: (a: TensorType, b: TensorType) => void,
  vjp: Rule<PrimOf<BinaryOp>>["vjp"],
): Rule<PrimOf<BinaryOp>> => ({
  inputs: (p) => [p.a, p.b],
  infer: ({ a, b }) => {
    requireSameDtype(a, b);
    dtypeCheck(a, b);
    return [{ dtype: a.dtype, shape: broadcastOrFail(a, b) }];
  },
  lower: (p, ctx) => ctx.node(onnx, [ctx.name(p.a), ctx.name(p.b)], ctx.out),
  vjp,
  flops: elementwise,
});

const numeric = (a: TensorType) => a.dtype !== "bool" || fail(`arithmetic on bool: ${formatType(a)}`);

const compare = (onnx: string): Rule<PrimOf<CompareOp>> => ({
  inputs: (p) => [p.a, p.b],
  infer: ({ a, b }) => (requireSameDtype(a, b), [{ dtype: "bool", shape: broadcastOrFail(a, b) }]),
  lower: (p, ctx) => ctx.node(onnx, [ctx.name(p.a), ctx.name(p.b)], ctx.out),
  vjp: nonDifferentiable,
  flops: noFlops,
});

const logic = (onnx: string): Rule<PrimOf<LogicOp>> => ({
  inputs: (p) => [p.a, p.b],
  infer: ({ a, b }) => {
    if (a.dtype !== "bool" || b.dtype !== "bool") {
      fail(`operands must be bool: ${formatType(a)}, ${formatType(b)}`);
    }
    return [{ dtype: "bool", shape: broadcastOrFail(a, b) }];
  },
  lower: (p, ctx) => ctx.node(onnx, [ctx.name(p.a), ctx.name(p.b)], ctx.out),
  vjp: nonDifferentiable,
  flops: noFlops,
});

const unary = (
  onnx: string,
  vjp: (x: Tensor, y: Tensor, ct: Tensor, b: Builder) => Tensor,
  floatOnly = true,
): Rule<PrimOf<UnaryOp>> => ({
  inputs: (p) => [p.x],
  infer: ({ x }) => ((floatOnly ? requireFloat(x) : numeric(x)), [{ dtype: x.dtype, shape: x.shape }]),
  lower: (p, ctx) => ctx.node(onnx, [ctx.name(p.x)], ctx.out),
  vjp: (p, [y], [ct], b) => [ct && vjp(p.x, y, ct, b)],
  flops: elementwise,
});

const reduction = (onnx: string, vjp: Rule<PrimOf<ReduceOp>>["vjp"]): Rule<PrimOf<ReduceOp>> => ({
  inputs: (p) => [p.x],
  infer: ({ x, axes, keepDims }) => {
    if (x.dtype === "bool") fail(`cannot reduce bool ${formatType(x)}`);
    const norm = axes.map((a) => axisOrFail(a, x.rank));
    if (new Set(norm).size !== norm.length) fail(`repeated axes ${JSON.stringify(axes)}`);
    return [{ dtype: x.dtype, shape: reducedShape(x.shape, norm, keepDims) }];
  },
  lower: (p, ctx) =>
    ctx.node(onnx, [ctx.name(p.x), ctx.int64(p.axes.map((a) => normalizeAxis(a, p.x.rank)!))], ctx.out, {
      keepdims: { int: p.keepDims ? 1 : 0 },
    }),
  vjp,
  flops: (p) => size(p.x),
});

/** Brings a reduction's cotangent back to the input's shape (re-inserting reduced axes, then expanding). */
const unreduce = (
  ct: Tensor,
  x: Tensor,
  axes: readonly number[],
  keepDims: boolean,
  b: Builder,
): Tensor => {
  const norm = axes.map((a) => normalizeAxis(a, x.rank)!);
  const kept = keepDims ? ct : b.reshape(ct, reducedShape(x.shape, norm, true));
  return b.expand(kept, x.shape);
};

/** The matrix that maps a length-`inSize` signal to `outSize` samples by linear interpolation, as ONNX
 * Resize(mode=linear, coordinate_transformation_mode=half_pixel) does (PyTorch's align_corners=False). */
export const linearInterpolationMatrix = (outSize: number, inSize: number): Float64Array => {
  const m = new Float64Array(outSize * inSize);
  const scale = outSize / inSize;
  for (let o = 0; o < outSize; o++) {
    const src = Math.min(Math.max((o + 0.5) / scale - 0.5, 0), inSize - 1);
    const i0 = Math.floor(src);
    const i1 = Math.min(i0 + 1, inSize - 1);
    const t = src - i0;
    m[o * inSize + i0] += 1 - t;
    m[o * inSize + i1] += t;
  }
  return m;
};

const inversePerm = (perm: readonly number[]) => {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
};

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

// ---------------------------------------------------------------------------------------------------
// The table

export const RULES: RuleTable = {
  input: {
    inputs: () => [],
    infer: (p) => [{ dtype: p.dtype, shape: p.shape }],
    lower: () => {}, // a graph input
    vjp: () => [],
    flops: noFlops,
  },
  variable: {
    inputs: () => [],
    infer: (p) => [{ dtype: p.dtype, shape: p.shape }],
    lower: () => {}, // a graph input fed from plan state, or an initializer when exported
    vjp: () => [],
    flops: noFlops,
  },
  constant: {
    inputs: () => [],
    infer: (p) => {
      if (p.value.length !== sizeOf(p.shape)) fail(`${p.value.length} values for shape [${p.shape}]`);
      return [{ dtype: p.dtype, shape: p.shape }];
    },
    lower: () => {}, // an initializer
    vjp: () => [],
    flops: noFlops,
  },

  matmul: {
    inputs: (p) => [p.a, p.b],
    infer: ({ a, b }) => {
      requireFloat(a, "a");
      requireSameDtype(a, b);
      if (a.rank < 2 || b.rank < 2) fail(`operands must have rank >= 2`);
      const k = a.shape[a.rank - 1], k2 = b.shape[b.rank - 2];
      if (k !== k2) fail(`inner dimensions differ (${k} vs ${k2})`);
      const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2)) ??
        fail(`batch dimensions do not broadcast`);
      return [{ dtype: a.dtype, shape: [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]] }];
    },
    lower: (p, ctx) => ctx.node("MatMul", [ctx.name(p.a), ctx.name(p.b)], ctx.out),
    vjp: ({ a, b }, _, [ct], o) => {
      if (!ct) return [];
      const da = o.sumTo(o.matmul(ct, o.mT(b)), a.shape);
      // A weight shared across batch axes: fold them into rows, one large matmul instead of a batched
      // matmul followed by a sum.
      const db = b.rank === 2 && a.rank > 2
        ? o.matmul(o.mT(o.reshape(a, [-1, a.shape[a.rank - 1]])), o.reshape(ct, [-1, ct.shape[ct.rank - 1]]))
        : o.sumTo(o.matmul(o.mT(a), ct), b.shape);
      return [da, db];
    },
    flops: ({ a }, [y]) => 2 * size(y) * a.shape[a.rank - 1],
  },

  add: binary(
    "Add",
    numeric,
    ({ a, b }, _, [ct], o) => ct ? [o.sumTo(ct, a.shape), o.sumTo(ct, b.shape)] : [],
  ),
  sub: binary(
    "Sub",
    numeric,
    ({ a, b }, _, [ct], o) => ct ? [o.sumTo(ct, a.shape), o.sumTo(o.neg(ct), b.shape)] : [],
  ),
  mul: binary(
    "Mul",
    numeric,
    ({ a, b }, _, [ct], o) => ct ? [o.sumTo(o.mul(ct, b), a.shape), o.sumTo(o.mul(ct, a), b.shape)] : [],
  ),
  div: binary(
    "Div",
    numeric,
    ({ a, b }, [y], [ct], o) =>
      ct ? [o.sumTo(o.div(ct, b), a.shape), o.sumTo(o.neg(o.div(o.mul(ct, y), b)), b.shape)] : [],
  ),
  pow: binary("Pow", (a) => requireFloat(a), ({ a, b }, [y], [ct], o) =>
    ct
      ? [
        // b·a^(b−1), defined as 0 where b = 0 (PyTorch does the same), so a = 0 with b = 0 gives 0, not NaN.
        o.sumTo(o.mul(ct, o.where(o.equal(b, 0), 0, o.mul(b, o.pow(a, o.sub(b, 1))))), a.shape),
        o.sumTo(o.mul(ct, o.mul(o.log(a), y)), b.shape),
      ]
      : []),
  // Ties send the whole cotangent to `a`.
  max: binary("Max", numeric, ({ a, b }, _, [ct], o) => {
    if (!ct) return [];
    const takeA = o.greaterOrEqual(a, b);
    return [o.sumTo(o.where(takeA, ct, 0), a.shape), o.sumTo(o.where(takeA, 0, ct), b.shape)];
  }),
  min: binary("Min", numeric, ({ a, b }, _, [ct], o) => {
    if (!ct) return [];
    const takeA = o.lessOrEqual(a, b);
    return [o.sumTo(o.where(takeA, ct, 0), a.shape), o.sumTo(o.where(takeA, 0, ct), b.shape)];
  }),

  equal: compare("Equal"),
  less: compare("Less"),
  greater: compare("Greater"),
  lessOrEqual: compare("LessOrEqual"),
  greaterOrEqual: compare("GreaterOrEqual"),
  and: logic("And"),
  or: {
    ...logic("Or"),
    // ONNX Runtime's WebGPU provider runs Or on the CPU: a or b = Where(a, a, b), which it runs on the device.
    lower: (p, ctx) =>
      ctx.target === "webgpu"
        ? ctx.node("Where", [ctx.name(p.a), ctx.name(p.a), ctx.name(p.b)], ctx.out)
        : ctx.node("Or", [ctx.name(p.a), ctx.name(p.b)], ctx.out),
  },
  not: {
    inputs: (p) => [p.x],
    infer: ({ x }) => (x.dtype === "bool" || fail(`operand must be bool: ${formatType(x)}`), [x]),
    lower: (p, ctx) => ctx.node("Not", [ctx.name(p.x)], ctx.out),
    vjp: nonDifferentiable,
    flops: noFlops,
  },

  neg: unary("Neg", (_x, _y, ct, o) => o.neg(ct), false),
  exp: unary("Exp", (_x, y, ct, o) => o.mul(ct, y)),
  log: unary("Log", (x, _y, ct, o) => o.div(ct, x)),
  sqrt: unary("Sqrt", (_x, y, ct, o) => o.div(o.mul(ct, 0.5), y)),
  erf: unary("Erf", (x, _y, ct, o) => o.mul(ct, o.mul(o.exp(o.neg(o.mul(x, x))), 2 / Math.sqrt(Math.PI)))),
  tanh: unary("Tanh", (_x, y, ct, o) => o.mul(ct, o.sub(1, o.mul(y, y)))),
  sigmoid: unary("Sigmoid", (_x, y, ct, o) => o.mul(ct, o.mul(y, o.sub(1, y)))),
  relu: unary("Relu", (x, _y, ct, o) => passWhere(o.greater(x, 0), ct, o)),
  abs: unary("Abs", (x, _y, ct, o) => o.mul(ct, o.sign(x)), false),
  sign: {
    ...unary("Sign", (_x, _y, ct) => ct, false),
    vjp: nonDifferentiable,
  },

  gelu: {
    inputs: (p) => [p.x],
    infer: ({ x }) => (requireFloat(x), [x]),
    lower: (p, ctx) => ctx.node("Gelu", [ctx.name(p.x)], ctx.out, { approximate: { string: p.approximate } }),
    vjp: ({ x, approximate }, _, [ct], o) => {
      if (!ct) return [];
      if (approximate === "none") {
        // d/dx x·Φ(x) = Φ(x) + x·φ(x)
        const cdf = o.mul(o.add(o.erf(o.mul(x, Math.SQRT1_2)), 1), 0.5);
        const pdf = o.mul(o.exp(o.mul(o.mul(x, x), -0.5)), 1 / Math.sqrt(2 * Math.PI));
        return [o.mul(ct, o.add(cdf, o.mul(x, pdf)))];
      }
      // y = ½x(1 + tanh u), u = c(x + 0.044715x³)
      const x2 = o.mul(x, x);
      const t = o.tanh(o.mul(o.mul(x, o.add(o.mul(x2, 0.044715), 1)), SQRT_2_OVER_PI));
      const du = o.mul(o.add(o.mul(x2, 3 * 0.044715), 1), SQRT_2_OVER_PI);
      const dy = o.add(o.mul(o.add(t, 1), 0.5), o.mul(o.mul(o.mul(x, 0.5), o.sub(1, o.mul(t, t))), du));
      return [o.mul(ct, dy)];
    },
    flops: (_, [y]) => 8 * size(y),
  },

  softmax: {
    inputs: (p) => [p.x],
    infer: ({ x, axis }) => (requireFloat(x), axisOrFail(axis, x.rank), [x]),
    lower: (p, ctx) => ctx.node("Softmax", [ctx.name(p.x)], ctx.out, { axis: { int: p.axis } }),
    vjp: ({ axis }, [y], [ct], o) => ct ? [o.mul(y, o.sub(ct, o.sum(o.mul(ct, y), [axis], true)))] : [],
    flops: (_, [y]) => 5 * size(y),
  },
  logSoftmax: {
    inputs: (p) => [p.x],
    infer: ({ x, axis }) => (requireFloat(x), axisOrFail(axis, x.rank), [x]),
    lower: (p, ctx) => {
      if (ctx.target === "cpu") {
        return ctx.node("LogSoftmax", [ctx.name(p.x)], ctx.out, { axis: { int: p.axis } });
      }
      // WebGPU has no LogSoftmax kernel: x − max − log Σ exp(x − max), the same stable form.
      const axes = ctx.int64([p.axis]), max = ctx.fresh("max"), shifted = ctx.fresh("shifted");
      const exp = ctx.fresh("exp"), sum = ctx.fresh("sum"), logSum = ctx.fresh("logSum");
      ctx.node("ReduceMax", [ctx.name(p.x), axes], [max], { keepdims: { int: 1 } });
      ctx.node("Sub", [ctx.name(p.x), max], [shifted]);
      ctx.node("Exp", [shifted], [exp]);
      ctx.node("ReduceSum", [exp, axes], [sum], { keepdims: { int: 1 } });
      ctx.node("Log", [sum], [logSum]);
      ctx.node("Sub", [shifted, logSum], ctx.out);
    },
    vjp: ({ axis }, [y], [ct], o) => ct ? [o.sub(ct, o.mul(o.exp(y), o.sum(ct, [axis], true)))] : [],
    flops: (_, [y]) => 5 * size(y),
  },

  layerNorm: {
    inputs: (p) => [p.x, p.scale, p.bias],
    // Outputs: y, mean, inverse standard deviation (the last two shaped like x with normalized axes = 1).
    infer: ({ x, scale, bias, axis }) => {
      requireFloat(x);
      requireSameDtype(x, scale);
      requireSameDtype(x, bias);
      const a = axisOrFail(axis, x.rank);
      const normalized = x.shape.slice(a);
      if (!shapeEquals(scale.shape, normalized) || !shapeEquals(bias.shape, normalized)) {
        fail(
          `scale ${formatType(scale)} and bias ${
            formatType(bias)
          } must have the normalized shape [${normalized}]`,
        );
      }
      const stats = { dtype: x.dtype, shape: x.shape.map((d, i) => (i < a ? d : 1)) };
      return [x, stats, stats];
    },
    lower: (p, ctx) => {
      const axis = normalizeAxis(p.axis, p.x.rank)!;
      const [y, mean, invStd] = ctx.out.map((name, i) => (ctx.used[i] ? name : ""));
      const x = ctx.name(p.x);
      // ONNX Runtime's kernel returns float32 statistics even for float64 input; for float64 we compute
      // them separately (used only by gradients) so they keep double precision.
      const kernelStats = p.x.dtype === "float32";
      ctx.node("LayerNormalization", [x, ctx.name(p.scale), ctx.name(p.bias)], [
        y,
        kernelStats ? mean : "",
        kernelStats ? invStd : "",
      ], { axis: { int: axis }, epsilon: { float: p.epsilon } });
      if (kernelStats || (!mean && !invStd)) return;
      const axes = ctx.int64(p.x.shape.map((_, i) => i).filter((i) => i >= axis));
      const m = mean || ctx.fresh("mean");
      ctx.node("ReduceMean", [x, axes], [m], { keepdims: { int: 1 } });
      if (!invStd) return;
      const centered = ctx.fresh("centered"), sq = ctx.fresh("sq"), variance = ctx.fresh("var");
      const shifted = ctx.fresh("varEps"), std = ctx.fresh("std");
      ctx.node("Sub", [x, m], [centered]);
      ctx.node("Mul", [centered, centered], [sq]);
      ctx.node("ReduceMean", [sq, axes], [variance], { keepdims: { int: 1 } });
      ctx.node("Add", [variance, ctx.scalar(p.epsilon, p.x.dtype)], [shifted]);
      ctx.node("Sqrt", [shifted], [std]);
      ctx.node("Reciprocal", [std], [invStd]);
    },
    vjp: ({ x, scale, bias, axis }, [_, mean, invStd], [ct], o) => {
      if (!ct) return [];
      const a = normalizeAxis(axis, x.rank)!;
      const axes = x.shape.map((_, i) => i).filter((i) => i >= a);
      const xhat = o.mul(o.sub(x, mean), invStd);
      const dxhat = o.mul(ct, scale);
      const dx = o.mul(
        invStd,
        o.sub(o.sub(dxhat, o.mean(dxhat, axes, true)), o.mul(xhat, o.mean(o.mul(dxhat, xhat), axes, true))),
      );
      return [dx, o.sumTo(o.mul(ct, xhat), scale.shape), o.sumTo(ct, bias.shape)];
    },
    flops: ({ x }) => 8 * size(x),
  },

  reduceSum: reduction(
    "ReduceSum",
    ({ x, axes, keepDims }, _, [ct], o) => ct ? [unreduce(ct, x, axes, keepDims, o)] : [],
  ),
  reduceMean: reduction("ReduceMean", ({ x, axes, keepDims }, _, [ct], o) => {
    if (!ct) return [];
    const n = axes.reduce((acc, a) => acc * x.shape[normalizeAxis(a, x.rank)!], 1);
    return [unreduce(o.div(ct, n), x, axes, keepDims, o)];
  }),
  // Ties share the cotangent equally.
  reduceMax: reduction("ReduceMax", ({ x, axes, keepDims }, [y], [ct], o) => {
    if (!ct) return [];
    const hit = o.cast(o.equal(x, unreduce(y, x, axes, keepDims, o)), x.dtype);
    const count = o.sum(hit, axes, true);
    return [o.div(o.mul(hit, unreduce(ct, x, axes, keepDims, o)), count)];
  }),

  argMax: {
    inputs: (p) => [p.x],
    infer: ({ x, axis, keepDims }) => {
      const a = axisOrFail(axis, x.rank);
      return [{ dtype: "int64", shape: reducedShape(x.shape, [a], keepDims) }];
    },
    lower: (p, ctx) => {
      const axis = normalizeAxis(p.axis, p.x.rank)!;
      // WebGPU's ArgMax leaves its int64 indices in host memory (their reader then runs on the CPU).
      if (ctx.target === "webgpu" && p.x.dtype === "float32") {
        return argMaxOnDevice(ctx, ctx.name(p.x), p.x.shape, axis, p.keepDims);
      }
      ctx.node("ArgMax", [ctx.name(p.x)], ctx.out, {
        axis: { int: axis },
        keepdims: { int: p.keepDims ? 1 : 0 },
      });
    },
    vjp: nonDifferentiable,
    flops: (p) => size(p.x),
  },

  reshape: {
    inputs: (p) => [p.x],
    infer: ({ x, shape }) => {
      if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`invalid target shape [${shape}]`);
      if (sizeOf(shape) !== size(x)) {
        fail(`cannot reshape ${formatType(x)} (${size(x)} elements) to [${shape}]`);
      }
      return [{ dtype: x.dtype, shape }];
    },
    lower: (p, ctx) => {
      // A leading dimension kept from the input is written as 0 ("copy"), so a dynamic batch flows through.
      const dims = p.shape.map((d, i) => (i === 0 && p.x.rank > 0 && p.x.shape[0] === d ? 0 : d));
      ctx.node("Reshape", [ctx.name(p.x), ctx.shape(dims)], ctx.out);
    },
    vjp: ({ x }, _, [ct], o) => [ct && o.reshape(ct, x.shape)],
    flops: noFlops,
  },
  transpose: {
    inputs: (p) => [p.x],
    infer: ({ x, perm }) => {
      const sorted = [...perm].sort((a, b) => a - b);
      if (perm.length !== x.rank || sorted.some((p, i) => p !== i)) {
        fail(`perm [${perm}] is not a permutation of the ${x.rank} axes`);
      }
      return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }];
    },
    lower: (p, ctx) => ctx.node("Transpose", [ctx.name(p.x)], ctx.out, { perm: { ints: p.perm } }),
    vjp: ({ perm }, _, [ct], o) => [ct && o.transpose(ct, inversePerm(perm))],
    flops: noFlops,
  },
  concat: {
    inputs: (p) => p.xs,
    infer: ({ xs, axis }) => {
      if (xs.length === 0) fail("nothing to concatenate");
      const [first] = xs;
      const a = axisOrFail(axis, first.rank);
      for (const t of xs) {
        requireSameDtype(first, t);
        if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
          fail(`shapes differ outside axis ${a}: ${xs.map(formatType).join(", ")}`);
        }
      }
      const shape = [...first.shape];
      shape[a] = xs.reduce((acc, t) => acc + t.shape[a], 0);
      return [{ dtype: first.dtype, shape }];
    },
    lower: (p, ctx) => ctx.node("Concat", p.xs.map(ctx.name), ctx.out, { axis: { int: p.axis } }),
    vjp: ({ xs, axis }, _, [ct], o) => {
      if (!ct) return [];
      const a = normalizeAxis(axis, ct.rank)!;
      let start = 0;
      return xs.map((t) => {
        const part = o.slice(ct, [a], [start], [start + t.shape[a]]);
        start += t.shape[a];
        return part;
      });
    },
    flops: noFlops,
  },
  split: {
    inputs: (p) => [p.x],
    infer: ({ x, axis, sizes }) => {
      const a = axisOrFail(axis, x.rank);
      if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1)) {
        fail(`sizes [${sizes}] must be positive integers`);
      }
      if (sizes.reduce((t, n) => t + n, 0) !== x.shape[a]) {
        fail(`sizes [${sizes}] do not add up to axis ${a} of ${formatType(x)}`);
      }
      return sizes.map((n) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? n : d)) }));
    },
    lower: (p, ctx) =>
      // Unused pieces still need an output name (Split writes every piece).
      ctx.node(
        "Split",
        [ctx.name(p.x), ctx.int64(p.sizes)],
        ctx.out.map((name, i) => (ctx.used[i] ? name : ctx.fresh("unused"))),
        { axis: { int: normalizeAxis(p.axis, p.x.rank)! } },
      ),
    // One concat of the pieces' cotangents (zeros for unused pieces): a single copy, where slicing
    // would pad every piece to full size and add them up.
    vjp: ({ x, axis }, outs, cts, o) =>
      cts.every((ct) => !ct)
        ? []
        : [o.concat(outs.map((t, i) => cts[i] ?? o.zeros(o.graphOf(t), t.shape, x.dtype)), axis)],
    flops: noFlops,
  },
  slice: {
    inputs: (p) => [p.x],
    infer: ({ x, axes, starts, ends, steps }) => {
      if (axes.length !== starts.length || axes.length !== ends.length || axes.length !== steps.length) {
        fail(`axes, starts, ends and steps must have equal lengths`);
      }
      const shape = [...x.shape];
      axes.forEach((axis, i) => {
        const a = axisOrFail(axis, x.rank);
        shape[a] = sliceIndices(x.shape[a], starts[i], ends[i], steps[i]).length;
      });
      return [{ dtype: x.dtype, shape }];
    },
    lower: (p, ctx) =>
      ctx.node("Slice", [
        ctx.name(p.x),
        ctx.int64(p.starts),
        ctx.int64(p.ends.map((e) => Math.max(Math.min(e, 2 ** 62), -(2 ** 62)))),
        ctx.int64(p.axes),
        ctx.int64(p.steps),
      ], ctx.out),
    vjp: ({ x, axes, starts, ends, steps }, _, [ct], o) => {
      if (!ct) return [];
      // Place the cotangent back where each sliced axis' elements came from, one axis at a time.
      let g = ct;
      axes.forEach((axis, i) => {
        const a = normalizeAxis(axis, x.rank)!;
        const idx = sliceIndices(x.shape[a], starts[i], ends[i], steps[i]);
        const n = x.shape[a];
        const target = [...g.shape];
        target[a] = n;
        if (steps[i] === 1) {
          const pads = new Array<number>(2 * g.rank).fill(0);
          pads[a] = idx.length ? idx[0] : n;
          pads[g.rank + a] = idx.length ? n - idx[idx.length - 1] - 1 : 0;
          g = o.pad(g, pads, 0);
        } else {
          const index = o.constant(o.graphOf(g), idx, [idx.length], "int64");
          const along = g.shape.map((d, k) => (k === a ? d : 1));
          const indices = o.expand(o.reshape(index, along), g.shape);
          g = o.scatterElements(o.zeros(o.graphOf(g), target, g.dtype), indices, g, a, "add");
        }
      });
      return [g];
    },
    flops: noFlops,
  },
  pad: {
    inputs: (p) => [p.x],
    infer: ({ x, pads }) => {
      if (pads.length !== 2 * x.rank || pads.some((v) => !Number.isInteger(v) || v < 0)) {
        fail(`pads [${pads}] must be ${2 * x.rank} non-negative integers`);
      }
      return [{ dtype: x.dtype, shape: x.shape.map((d, i) => d + pads[i] + pads[i + x.rank]) }];
    },
    lower: (p, ctx) =>
      ctx.node("Pad", [ctx.name(p.x), ctx.int64(p.pads), ctx.scalar(p.value, p.x.dtype)], ctx.out, {
        mode: { string: "constant" },
      }),
    vjp: ({ x, pads }, _, [ct], o) =>
      ct
        ? [o.slice(ct, x.shape.map((_, i) => i), pads.slice(0, x.rank), x.shape.map((d, i) => pads[i] + d))]
        : [],
    flops: noFlops,
  },

  gather: {
    inputs: (p) => [p.x, p.indices],
    infer: ({ x, indices, axis }) => {
      requireIndex(indices);
      const a = axisOrFail(axis, x.rank);
      return [{ dtype: x.dtype, shape: [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)] }];
    },
    lower: (p, ctx) =>
      ctx.node("Gather", [ctx.name(p.x), ctx.name(p.indices)], ctx.out, { axis: { int: p.axis } }),
    vjp: ({ x, indices, axis }, _, [ct], o) => {
      if (!ct) return [];
      // Scatter-add rows back: flatten the index dims to one axis and scatter along it.
      const a = normalizeAxis(axis, x.rank)!;
      const pre = x.shape.slice(0, a), post = x.shape.slice(a + 1), n = size(indices);
      const flat = [...pre, n, ...post];
      const idx = o.expand(o.reshape(indices, flat.map((d, i) => (i === a ? d : 1))), flat);
      return [
        o.scatterElements(o.zeros(o.graphOf(ct), x.shape, x.dtype), idx, o.reshape(ct, flat), a, "add"),
        undefined,
      ];
    },
    flops: noFlops,
  },
  gatherElements: {
    inputs: (p) => [p.x, p.indices],
    infer: ({ x, indices, axis }) => {
      requireIndex(indices);
      const a = axisOrFail(axis, x.rank);
      if (indices.rank !== x.rank) fail(`indices must have the rank of x (${x.rank})`);
      if (indices.shape.some((d, i) => i !== a && d > x.shape[i])) {
        fail(`indices ${formatType(indices)} exceed x ${formatType(x)} outside axis ${a}`);
      }
      return [{ dtype: x.dtype, shape: indices.shape }];
    },
    lower: (p, ctx) =>
      ctx.node("GatherElements", [ctx.name(p.x), ctx.name(p.indices)], ctx.out, { axis: { int: p.axis } }),
    vjp: ({ x, indices, axis }, _, [ct], o) =>
      ct
        ? [
          pickGrad(x, indices, axis, ct, o) ??
            o.scatterElements(o.zeros(o.graphOf(ct), x.shape, x.dtype), indices, ct, axis, "add"),
          undefined,
        ]
        : [],
    flops: noFlops,
  },
  scatterElements: {
    inputs: (p) => [p.x, p.indices, p.updates],
    infer: ({ x, indices, updates, axis }) => {
      requireIndex(indices);
      requireSameDtype(x, updates);
      const a = axisOrFail(axis, x.rank);
      if (indices.rank !== x.rank || !shapeEquals(indices.shape, updates.shape)) {
        fail(
          `indices ${formatType(indices)} and updates ${formatType(updates)} must match, with the rank of x`,
        );
      }
      if (indices.shape.some((d, i) => i !== a && d > x.shape[i])) {
        fail(`indices ${formatType(indices)} exceed x ${formatType(x)} outside axis ${a}`);
      }
      return [x];
    },
    lower: (p, ctx) =>
      ctx.node("ScatterElements", [ctx.name(p.x), ctx.name(p.indices), ctx.name(p.updates)], ctx.out, {
        axis: { int: p.axis },
        reduction: { string: p.reduction },
      }),
    vjp: ({ indices, updates, axis, reduction }, _, [ct], o) => {
      if (!ct) return [];
      const dUpdates = o.gatherElements(ct, indices, axis);
      const dx = reduction === "add"
        ? ct
        : o.scatterElements(ct, indices, o.zeros(o.graphOf(ct), updates.shape, updates.dtype), axis, "none");
      return [dx, undefined, dUpdates];
    },
    flops: ({ updates }) => size(updates),
  },

  where: {
    inputs: (p) => [p.cond, p.a, p.b],
    infer: ({ cond, a, b }) => {
      if (cond.dtype !== "bool") fail(`condition must be bool, got ${formatType(cond)}`);
      requireSameDtype(a, b);
      return [{ dtype: a.dtype, shape: broadcastOrFail(cond, a, b) }];
    },
    lower: (p, ctx) => ctx.node("Where", [ctx.name(p.cond), ctx.name(p.a), ctx.name(p.b)], ctx.out),
    vjp: ({ cond, a, b }, _, [ct], o) =>
      ct ? [undefined, o.sumTo(o.where(cond, ct, 0), a.shape), o.sumTo(o.where(cond, 0, ct), b.shape)] : [],
    flops: elementwise,
  },
  cast: {
    inputs: (p) => [p.x],
    infer: ({ x, to }) => [{ dtype: to, shape: x.shape }],
    lower: (p, ctx) => ctx.node("Cast", [ctx.name(p.x)], ctx.out, { to: { int: ONNX_DTYPE[p.to] } }),
    vjp: ({ x, to }, _, [ct], o) => [ct && isFloat(x.dtype) && isFloat(to) ? o.cast(ct, x.dtype) : undefined],
    flops: noFlops,
  },
  oneHot: {
    inputs: (p) => [p.indices],
    infer: ({ indices, depth, dtype }) => {
      requireIndex(indices);
      if (!Number.isInteger(depth) || depth < 1) fail(`depth ${depth} must be a positive integer`);
      return [{ dtype, shape: [...indices.shape, depth] }];
    },
    lower: (p, ctx) => {
      // ONNX Runtime's OneHot kernel exists for float32 values; other dtypes are cast from it.
      const direct = p.dtype === "float32";
      const y = direct ? ctx.out[0] : ctx.fresh("onehot");
      const values = ctx.constant([0, 1], "float32", [2]);
      ctx.node("OneHot", [ctx.name(p.indices), ctx.int64([p.depth], []), values], [y], { axis: { int: -1 } });
      if (!direct) ctx.node("Cast", [y], ctx.out, { to: { int: ONNX_DTYPE[p.dtype] } });
    },
    vjp: nonDifferentiable,
    flops: noFlops,
  },
  topK: {
    inputs: (p) => [p.x],
    // Outputs: values (differentiable), indices (int64).
    infer: ({ x, k, axis }) => {
      const a = axisOrFail(axis, x.rank);
      if (!Number.isInteger(k) || k < 1 || k > x.shape[a]) fail(`k = ${k} must be in 1..${x.shape[a]}`);
      const shape = x.shape.map((d, i) => (i === a ? k : d));
      return [{ dtype: x.dtype, shape }, { dtype: "int64", shape }];
    },
    lower: (p, ctx) => {
      // WebGPU's TopK leaves its int64 indices in host memory (their reader then runs on the CPU): rank
      // the entries on the device instead, where the pairwise comparisons stay small.
      const axis = normalizeAxis(p.axis, p.x.rank)!;
      if (
        ctx.target === "webgpu" && p.x.dtype === "float32" &&
        sizeOf(p.x.shape) * p.x.shape[axis] <= RANK_TOPK_LIMIT
      ) {
        return topKOnDevice(ctx, ctx.name(p.x), p.x.shape, axis, p.k, p.largest);
      }
      ctx.node("TopK", [ctx.name(p.x), ctx.int64([p.k])], ctx.out, {
        axis: { int: p.axis },
        largest: { int: p.largest ? 1 : 0 },
        sorted: { int: 1 },
      });
    },
    vjp: ({ x, axis }, [_, indices], [ct], o) =>
      ct ? [o.scatterElements(o.zeros(o.graphOf(ct), x.shape, x.dtype), indices, ct, axis, "add")] : [],
    flops: (p) => size(p.x),
  },
  expand: {
    inputs: (p) => [p.x],
    infer: ({ x, shape }) => {
      const out = broadcastShapes(x.shape, shape) ?? fail(`cannot expand ${formatType(x)} to [${shape}]`);
      return [{ dtype: x.dtype, shape: out }];
    },
    lower: (p, ctx) => {
      // Dimensions x already has are written as 1 (Expand keeps them), so a dynamic batch flows through.
      const offset = p.shape.length - p.x.rank;
      const dims = p.shape.map((d, i) => (i >= offset && p.x.shape[i - offset] === d ? 1 : d));
      ctx.node("Expand", [ctx.name(p.x), ctx.shape(dims)], ctx.out);
    },
    vjp: ({ x }, _, [ct], o) => [ct && o.sumTo(ct, x.shape)],
    flops: noFlops,
  },
  clip: {
    inputs: (p) => [p.x],
    infer: ({ x }) => (numeric(x), [x]),
    lower: (p, ctx) =>
      ctx.node("Clip", [
        ctx.name(p.x),
        p.min === undefined ? "" : ctx.scalar(p.min, p.x.dtype),
        p.max === undefined ? "" : ctx.scalar(p.max, p.x.dtype),
      ], ctx.out),
    // ȳ passes where min ≤ x ≤ max, i.e. where the clip left x as it was: one Equal of output and input
    // and one masked multiply (ReLU6's backward in MobileNetV2), instead of a comparison per bound and
    // their And.
    vjp: ({ x, min, max }, [y], [ct], o) =>
      !ct ? [] : [min === undefined && max === undefined ? ct : passWhere(o.equal(y, x), ct, o)],
    flops: elementwise,
  },
  resize: {
    inputs: (p) => [p.x],
    infer: ({ x, height, width }) => {
      requireFloat(x);
      if (x.rank !== 4) fail(`resize expects NCHW (rank 4), got ${formatType(x)}`);
      if (height < 1 || width < 1) fail(`target size ${height}x${width} must be positive`);
      return [{ dtype: x.dtype, shape: [x.shape[0], x.shape[1], height, width] }];
    },
    lower: (p, ctx) =>
      // Full NCHW `sizes` through ctx.shape (which handles a dynamic batch). Not the `axes` attribute:
      // ONNX Runtime 1.30's transpose optimizer drops such `sizes` when it moves a Transpose across.
      ctx.node(
        "Resize",
        [ctx.name(p.x), "", "", ctx.shape([...p.x.shape.slice(0, 2), p.height, p.width])],
        ctx.out,
        {
          mode: { string: "linear" },
          coordinate_transformation_mode: { string: "half_pixel" },
        },
      ),
    // y = Mh · x · Mwᵀ, so x̄ = Mhᵀ · ȳ · Mw: the adjoint as two matmuls with constant matrices.
    vjp: ({ x, height, width }, _, [ct], o) => {
      if (!ct) return [];
      const g = o.graphOf(ct);
      const [h, w] = [x.shape[2], x.shape[3]];
      const mhT = o.constant(
        g,
        transpose2d(linearInterpolationMatrix(height, h), height, h),
        [h, height],
        x.dtype,
      );
      const mw = o.constant(g, linearInterpolationMatrix(width, w), [width, w], x.dtype);
      return [o.matmul(o.matmul(mhT, ct), mw)];
    },
    flops: (_, [y]) => 8 * size(y),
  },
  conv: {
    inputs: (p) => (p.bias ? [p.x, p.w, p.bias] : [p.x, p.w]),
    infer: ({ x, w, bias, strides, pads, dilations, group }) => {
      requireFloat(x);
      requireSameDtype(x, w);
      if (bias) {
        requireSameDtype(x, bias);
        if (bias.rank !== 1 || bias.shape[0] !== w.shape[0]) {
          fail(`bias ${formatType(bias)} must be [${w.shape[0]}], one per output channel`);
        }
      }
      if (x.rank !== 4 || w.rank !== 4) fail(`conv expects NCHW input and OIHW weight`);
      requireGroups(group, x.shape[1], w.shape[0], "input", "output");
      if (x.shape[1] !== w.shape[1] * group) {
        fail(`input channels ${x.shape[1]} != weight input channels ${w.shape[1]} × group ${group}`);
      }
      const out = [0, 1].map((i) => {
        const span = dilations[i] * (w.shape[2 + i] - 1) + 1;
        return Math.floor((x.shape[2 + i] + pads[i] + pads[i + 2] - span) / strides[i]) + 1;
      });
      if (out.some((d) => d < 1)) fail(`kernel ${formatType(w)} does not fit input ${formatType(x)}`);
      return [{ dtype: x.dtype, shape: [x.shape[0], w.shape[0], out[0], out[1]] }];
    },
    // The bias as Conv's own input rather than an Add after it: ONNX Runtime folds such an Add into the
    // Conv only when the bias is a constant (inference), not when it is fed (training).
    lower: (p, ctx) => {
      if (ctx.nchwcBlock && runsOnNchwc(p, ctx.nchwcBlock)) {
        return lowerNchwcDepthwise(p, ctx);
      }
      ctx.node(
        "Conv",
        [ctx.name(p.x), ctx.name(p.w), ...(p.bias ? [ctx.name(p.bias)] : [])],
        ctx.out,
        convAttrs(p),
      );
    },
    // x̄ is the transposed convolution of the cotangent (ONNX ConvTranspose: no zero-dilated copy of
    // the cotangent, no multiplications by the zeros a stride would insert), with the same groups.
    vjp: (p, _, [ct], o) =>
      ct
        ? [
          depthwiseInputGrad(p, ct, o) ?? o.convTranspose(ct, p.w, {
            strides: p.strides,
            pads: p.pads,
            dilations: p.dilations,
            group: p.group,
            size: [p.x.shape[2], p.x.shape[3]],
          }),
          convWeightGrad(p, ct, o),
          ...(p.bias ? [o.sum(ct, [0, 2, 3])] : []),
        ]
        : [],
    // w.shape[1] is c / group: each output element sums over its own group's channels only; a bias adds
    // one more per output element (as the Add it replaces counted).
    flops: ({ w, bias }, [y]) => 2 * size(y) * w.shape[1] * w.shape[2] * w.shape[3] + (bias ? size(y) : 0),
  },
  convTranspose: {
    inputs: (p) => [p.x, p.w],
    infer: ({ x, w, strides, pads, dilations, group, size: [h, wd] }) => {
      requireFloat(x);
      requireSameDtype(x, w);
      if (x.rank !== 4 || w.rank !== 4) fail(`convTranspose expects NCHW input and OIHW weight`);
      if (x.shape[1] !== w.shape[0]) {
        fail(`input channels ${x.shape[1]} != weight output channels ${w.shape[0]}`);
      }
      requireGroups(group, w.shape[1] * group, w.shape[0], "output", "input");
      const convOut = [h, wd].map((d, i) =>
        Math.floor((d + pads[i] + pads[i + 2] - (dilations[i] * (w.shape[2 + i] - 1) + 1)) / strides[i]) + 1
      );
      if (convOut[0] !== x.shape[2] || convOut[1] !== x.shape[3]) {
        fail(`a conv of a ${h}×${wd} input gives ${convOut.join("×")}, not ${x.shape[2]}×${x.shape[3]}`);
      }
      return [{ dtype: x.dtype, shape: [x.shape[0], w.shape[1] * group, h, wd] }];
    },
    lower: (p, ctx) => {
      // The rows and columns a stride leaves over at the end of the conv's input come back as
      // output_padding, so the result has exactly the conv input's size.
      const extra = p.size.map((d, i) => {
        const span = p.dilations[i] * (p.w.shape[2 + i] - 1) + 1;
        return (d + p.pads[i] + p.pads[i + 2] - span) % p.strides[i];
      });
      ctx.node("ConvTranspose", [ctx.name(p.x), ctx.name(p.w)], ctx.out, {
        ...convAttrs(p),
        output_padding: { ints: extra },
      });
    },
    // convTranspose(·, w) is the adjoint of conv(·, w): x̄ = conv(ȳ, w); w̄ is the conv's weight
    // gradient with ȳ as the conv's input and x as its output cotangent.
    vjp: (p, _, [ct], o) => {
      if (!ct) return [];
      const { w, strides, pads, dilations, group } = p;
      const asConv: PrimOf<"conv"> = { op: "conv", x: ct, w, strides, pads, dilations, group };
      return [o.conv(ct, w, { strides, pads, dilations, group }), convWeightGrad(asConv, p.x, o)];
    },
    // Each input element meets c / group output channels (w.shape[1]) through a kh×kw kernel.
    flops: ({ x, w }) => 2 * size(x) * w.shape[1] * w.shape[2] * w.shape[3],
  },

  stopGradient: {
    inputs: (p) => [p.x],
    infer: ({ x }) => [x],
    lower: (p, ctx) => ctx.node("Identity", [ctx.name(p.x)], ctx.out),
    vjp: () => [undefined],
    flops: noFlops,
  },
  identity: {
    inputs: (p) => [p.x],
    infer: ({ x }) => [x],
    lower: (p, ctx) => ctx.node("Identity", [ctx.name(p.x)], ctx.out),
    vjp: (_, __, [ct]) => [ct],
    flops: noFlops,
  },
};

const transpose2d = (m: Float64Array, rows: number, cols: number): Float64Array => {
  const t = new Float64Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c];
  return t;
};

/** The indices a Python-style slice `[start:end:step]` selects from a length-`n` axis. */
export const sliceIndices = (n: number, start: number, end: number, step: number): number[] => {
  if (!Number.isInteger(step) || step === 0) fail(`slice step must be a non-zero integer, got ${step}`);
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  const norm = (v: number) => (v < 0 ? v + n : v);
  const out: number[] = [];
  if (step > 0) {
    for (let i = clamp(norm(start), 0, n); i < clamp(norm(end), 0, n); i += step) out.push(i);
  } else {
    for (let i = clamp(norm(start), -1, n - 1); i > clamp(norm(end), -1, n - 1); i += step) out.push(i);
  }
  return out;
};

/**
 * ȳ where `mask` holds and 0 elsewhere (the x̄ of Relu and Clip), as ȳ · Cast(mask) rather than
 * Where(mask, ȳ, 0): ONNX Runtime's Where runs on one thread (MobileNetV2's ReLU6 gradients, 34 Where
 * nodes, were 10 % of its step's kernel time at T = 2, all on one thread; BENCHMARKS.md) while Cast and
 * Mul split over the intra-op threads. One difference: a non-finite ȳ where the mask is false gives NaN
 * instead of 0 — the step's gradients then hold a NaN rather than hiding an overflow.
 */
const passWhere = (mask: Tensor, ct: Tensor, o: Builder): Tensor => o.mul(ct, o.cast(mask, ct.dtype));

/**
 * x̄ of a gatherElements that picks one element along `axis` at every other position (indices of size 1
 * there, the full size elsewhere: cross-entropy's pick of the label's log-probability) as ȳ times a one-hot
 * mask, Cast(Equal(indices, iota) Or Equal(indices, iota − n)) (negative indices count from the end, as in
 * GatherElements), broadcast along the axis: elementwise kernels instead of a zero-filled tensor copied
 * and scattered into. A multiply, not a Where: ONNX Runtime's Where broadcasts in spans of one class
 * axis, writes three full-size tensors and runs on one thread (8 % of the ViT step's kernel time at T = 2
 * as Where(…, ȳ, Where(…, ȳ, 0)), BENCHMARKS.md); Equal, Or and Mul split over the threads. ȳ is finite
 * wherever the mask is 0 (the pick's cotangent is the loss's), so ȳ·0 = 0 as Where gave. `undefined`
 * where the scatter is needed.
 */
const pickGrad = (x: Tensor, indices: Tensor, axis: number, ct: Tensor, o: Builder): Tensor | undefined => {
  const a = normalizeAxis(axis, x.rank)!, n = x.shape[a];
  if (indices.shape.some((d, i) => d !== (i === a ? 1 : x.shape[i]))) return undefined;
  const g = o.graphOf(ct);
  const iota = o.constant(
    g,
    Array.from({ length: n }, (_, i) => i),
    x.shape.map((d, i) => (i === a ? d : 1)),
    indices.dtype,
  );
  // A negative index −k picks n − k: matched against a second constant rather than wrapped by an
  // integer Add, which the WebGPU provider would run on the CPU.
  const iotaFromEnd = o.constant(
    g,
    Array.from({ length: n }, (_, i) => i - n),
    x.shape.map((d, i) => (i === a ? d : 1)),
    indices.dtype,
  );
  return o.mul(ct, o.cast(o.or(o.equal(indices, iota), o.equal(indices, iotaFromEnd)), ct.dtype));
};

/** ONNX Runtime's operator set of its NCHWc kernels (blocked channels; contrib ops of its CPU EP). */
export const NCHWC_DOMAIN = "com.microsoft.nchwc";

/**
 * Whether a conv is a depthwise convolution that ONNX Runtime's NCHWc kernel can run when its block size
 * is `block`: float32, one output channel per input channel, channels a multiple of the block, stride 1 or
 * 2. Any kernel size and dilation: MLAS's NCHWc depthwise kernel walks the kernel window tap by tap and
 * skips the taps that fall in the padding, so besides MobileNetV2's 3×3 convs it runs the weight
 * gradient's feature-map-sized kernels, dilated by the forward stride (`foldedDepthwiseWeightGrad`;
 * values checked against the looped definition in conv_test.ts and against ORT's grouped Conv in
 * nchwc_test.ts).
 */
export const runsOnNchwc = (p: PrimOf<"conv">, block: number): boolean => {
  const { x, w, group, strides } = p;
  return x.dtype === "float32" && group > 1 && group === x.shape[1] && w.shape[0] === group &&
    w.shape[1] === 1 && group % block === 0 && strides.every((s) => s === 1 || s === 2);
};

/**
 * A depthwise conv through ONNX Runtime's NCHWc kernels, for weights that are fed (training): ORT's
 * graph optimizer moves a Conv there only when its weight is a constant, and otherwise runs depthwise
 * convolutions through its generic grouped path, at 3–4 % of its MatMul rate (BENCHMARKS.md). Here the
 * graph does what the optimizer would: the input reordered to blocks of B channels (ReorderInput; B is
 * ORT's block size, `LowerContext.nchwcBlock`), the weight [c, 1, kh, kw] reordered to [c/B, kh, kw, B]
 * (MLAS's OIHWBo layout), the NCHWc Conv, and the output back to NCHW (ReorderOutput). The weight's
 * reorder is the input reorder of it viewed as [1, c, kh, kw], the same layout: a multi-threaded kernel,
 * where a Reshape and a Transpose took 3.4× as long at T = 2 on the weight gradient's feature-map-sized
 * kernels (`foldedDepthwiseWeightGrad`; 28.0 against 8.3 ms summed over 10 depthwise shapes of
 * MobileNetV2's range, AMD EPYC family 26, AVX-512).
 */
const lowerNchwcDepthwise = (p: PrimOf<"conv">, ctx: LowerContext): void => {
  const [c, , kh, kw] = p.w.shape;
  const xc = ctx.fresh("nchwcInput"), wImage = ctx.fresh("wImage"), wBlocks = ctx.fresh("wBlocks");
  const wc = ctx.fresh("nchwcWeight"), yc = ctx.fresh("nchwcOutput");
  ctx.node("ReorderInput", [ctx.name(p.x)], [xc], {}, NCHWC_DOMAIN);
  ctx.node("Reshape", [ctx.name(p.w), ctx.int64([1, c, kh, kw])], [wImage]);
  ctx.node("ReorderInput", [wImage], [wBlocks], {}, NCHWC_DOMAIN);
  ctx.node("Reshape", [wBlocks, ctx.int64([c, 1, kh, kw])], [wc]);
  ctx.node("Conv", [xc, wc, ...(p.bias ? [ctx.name(p.bias)] : [])], [yc], convAttrs(p), NCHWC_DOMAIN);
  ctx.node("ReorderOutput", [yc], ctx.out, { channels: { int: c } }, NCHWC_DOMAIN);
};

/** The ONNX attributes of a conv or convTranspose geometry (`group` only when not 1). */
const convAttrs = (p: ConvGeometry): Record<string, Attr> => ({
  strides: { ints: p.strides },
  pads: { ints: p.pads },
  dilations: { ints: p.dilations },
  ...(p.group === 1 ? {} : { group: { int: p.group } }),
});

/** Both channel counts of a grouped convolution must split into `group` blocks. */
const requireGroups = (group: number, a: number, b: number, aName: string, bName: string) => {
  if (!Number.isInteger(group) || group < 1) fail(`group must be a positive integer, got ${group}`);
  if (a % group !== 0) fail(`${aName} channels ${a} are not divisible by group ${group}`);
  if (b % group !== 0) fail(`${bName} channels ${b} are not divisible by group ${group}`);
};

/**
 * w̄ of a convolution: w̄[o, c, i, j] = Σ_{n,y,x} ȳ[n, o, y, x] · x_pad[n, c, y·s + i·d, x·s + j·d], itself
 * a convolution with the batch and channel roles swapped: the input's channels (within a group) become
 * the batch, its batch becomes the channels, the cotangent is the kernel, and stride and dilation trade
 * places. With groups, group i of that convolution pairs the batch-as-channels of input block i with the
 * cotangent channels of output block i, so it stays one grouped Conv. Depthwise convs take
 * `foldedDepthwiseWeightGrad` or `tapDepthwiseWeightGrad` instead (measured faster on ONNX Runtime's CPU EP).
 */
const convWeightGrad = (p: PrimOf<"conv">, ct: Tensor, o: Builder): Tensor => {
  const { x, w, strides, pads, dilations, group } = p;
  const [n, c, h, wd] = x.shape;
  if (group > 1 && group === c) {
    return w.shape[0] === c || strides.some((q) => q > 1)
      ? foldedDepthwiseWeightGrad(p, ct, o)
      : tapDepthwiseWeightGrad(p, ct, o);
  }
  if (isPointwise(p)) return pointwiseWeightGrad(p, ct, o);
  const cg = c / group; // input channels per group
  // [n, c, h, w] → [c/g, g·n, h, w]: batch = channel within the group, channels = (group, image).
  const xt = group === 1
    ? o.transpose(x, [1, 0, 2, 3])
    : o.reshape(o.transpose(o.reshape(x, [n, group, cg, h, wd]), [2, 1, 0, 3, 4]), [cg, group * n, h, wd]);
  const gt = o.transpose(ct, [1, 0, 2, 3]); // [o, n, ho, wo]: output channel o reads its group's n planes
  const full = o.conv(xt, gt, {
    strides: [dilations[0], dilations[1]],
    dilations: [strides[0], strides[1]],
    pads: [pads[0], pads[1], pads[2], pads[3]],
    group,
  }); // [c/g, o, ≥kh, ≥kw]; the bottom/right pads can give extra rows and columns past the kernel
  const cropped = o.slice(full, [2, 3], [0, 0], [w.shape[2], w.shape[3]]);
  return o.transpose(cropped, [1, 0, 2, 3]);
};

/** A 1×1, stride-1, unpadded, ungrouped conv: a matmul over channels at every position. */
const isPointwise = ({ w, strides, pads, group }: PrimOf<"conv">): boolean =>
  group === 1 && w.shape[2] === 1 && w.shape[3] === 1 && strides.every((s) => s === 1) &&
  pads.every((q) => q === 0);

/**
 * w̄ of a pointwise conv (MobileNetV2's expand and project convs) as one batched matmul,
 * w̄[o, c] = Σ_n ȳ[n] · x[n]ᵀ over the h·w positions, then a sum over the batch. The general form is a
 * conv whose kernel is the whole cotangent map, which ONNX Runtime's CPU Conv runs through im2col at a
 * small fraction of its MatMul rate (`deno task bench profile`, BENCHMARKS.md).
 */
const pointwiseWeightGrad = ({ x, w }: PrimOf<"conv">, ct: Tensor, o: Builder): Tensor => {
  const [n, c, h, wd] = x.shape, oc = w.shape[0];
  const perImage = o.matmul(o.reshape(ct, [n, oc, h * wd]), o.mT(o.reshape(x, [n, c, h * wd]))); // [n, o, c]
  return o.reshape(o.sum(perImage, [0]), [oc, c, 1, 1]);
};

/**
 * x̄ of a stride-1 depthwise conv as another depthwise conv: the kernel turned by 180° and the padding
 * mirrored (span − 1 − pad). ONNX Runtime's CPU Conv runs this about twice as fast as the equivalent
 * grouped ConvTranspose. `undefined` where it does not apply (a stride, or a pad wider than the kernel).
 */
const depthwiseInputGrad = (p: PrimOf<"conv">, ct: Tensor, o: Builder): Tensor | undefined => {
  const { x, w, strides, pads, dilations, group } = p;
  const c = x.shape[1], [kh, kw] = [w.shape[2], w.shape[3]];
  if (group === 1 || group !== c || strides[0] !== 1 || strides[1] !== 1) return undefined;
  const span = [dilations[0] * (kh - 1) + 1, dilations[1] * (kw - 1) + 1];
  const mirrored = [0, 1, 2, 3].map((i) => span[i % 2] - 1 - pads[i]);
  if (mirrored.some((q) => q < 0)) return undefined;
  // w [c·m, 1, kh, kw] → [c, m, kh, kw]: the adjoint maps each group's m cotangent planes to its channel.
  const end = -(2 ** 62); // past the start, for a reversing slice
  const turned = o.slice(o.reshape(w, [c, w.shape[0] / c, kh, kw]), [2, 3], [-1, -1], [end, end], [-1, -1]);
  return o.conv(ct, turned, {
    dilations: [dilations[0], dilations[1]],
    pads: [mirrored[0], mirrored[1], mirrored[2], mirrored[3]],
    group: c,
  });
};

/**
 * w̄ of a depthwise conv as one grouped Conv with the batch folded into the channels: image n's channel c
 * is group n·c, whose kernel is its own m cotangent planes (the stride becomes the dilation, the conv's
 * pads stay), giving per-image w̄ [n·c·m, kh, kw] that a sum over the batch finishes. With one output
 * channel per input channel (m = 1) that conv is depthwise, over n·c channels, and the CPU lowering runs
 * it on ONNX Runtime's NCHWc kernels (`runsOnNchwc`): multi-threaded, reading x and ȳ in place of the
 * kh·kw one-thread Slice copies of the tap form, and with no Pad. At MobileNetV2's shapes that was the
 * fastest form at both strides on AVX-512 and AVX2 kernels (BENCHMARKS.md, "This round's changes"). On
 * ORT's generic grouped Conv (m > 1, channels not a multiple of the block, other providers) it ran
 * 1.4–2.3× faster than the taps at stride 2 but 1.3–2× slower at stride 1, so stride 1 with m > 1 keeps
 * the taps (`tapDepthwiseWeightGrad`).
 */
export const foldedDepthwiseWeightGrad = (p: PrimOf<"conv">, ct: Tensor, o: Builder): Tensor => {
  const { x, w, strides, pads, dilations } = p;
  const [n, c, h, wd] = x.shape, [, oc, ho, wo] = ct.shape;
  const full = o.conv(o.reshape(x, [1, n * c, h, wd]), o.reshape(ct, [n * oc, 1, ho, wo]), {
    strides: [dilations[0], dilations[1]],
    dilations: [strides[0], strides[1]],
    pads: [pads[0], pads[1], pads[2], pads[3]],
    group: n * c,
  }); // [1, n·c·m, ≥kh, ≥kw]; the bottom/right pads can give extra rows and columns past the kernel
  const cropped = o.slice(full, [2, 3], [0, 0], [w.shape[2], w.shape[3]]);
  return o.reshape(o.sum(o.reshape(cropped, [n, oc, w.shape[2], w.shape[3]]), [0]), w.shape);
};

/**
 * w̄ of a depthwise conv (group = c, weight [c·m, 1, kh, kw]) as kh·kw shifted products: for each tap
 * (a, b), w̄[·, a, b] = Σ_{n,y,x} ȳ[n, ·, y, x] · x_pad[n, ·, y·s + a·d, x·s + b·d], a strided slice, a
 * multiply and a sum. For stride 1 with a channel multiplier m > 1, where the folded conv is not
 * depthwise and ORT's generic grouped Conv, whose im2col with a feature-map-sized kernel and a kh×kw
 * output is slow, would run it.
 */
export const tapDepthwiseWeightGrad = (p: PrimOf<"conv">, ct: Tensor, o: Builder): Tensor => {
  const { x, w, strides, pads, dilations } = p;
  const [n, c] = x.shape, [, oc, ho, wo] = ct.shape, [kh, kw] = [w.shape[2], w.shape[3]];
  const m = oc / c; // channel multiplier
  const padded = pads.some((q) => q !== 0) ? o.pad(x, [0, 0, pads[0], pads[1], 0, 0, pads[2], pads[3]]) : x;
  const cotangent = m === 1 ? ct : o.reshape(ct, [n, c, m, ho * wo]);
  const taps: Tensor[] = [];
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const [top, left] = [a * dilations[0], b * dilations[1]];
      const window = o.slice(
        padded,
        [2, 3],
        [top, left],
        [top + (ho - 1) * strides[0] + 1, left + (wo - 1) * strides[1] + 1],
        [strides[0], strides[1]],
      ); // [n, c, ho, wo]
      const product = m === 1
        ? o.mul(window, cotangent)
        : o.mul(o.reshape(window, [n, c, 1, ho * wo]), cotangent);
      taps.push(o.reshape(o.sum(product, m === 1 ? [0, 2, 3] : [0, 3]), [oc, 1]));
    }
  }
  return o.reshape(o.concat(taps, 1), w.shape);
};
