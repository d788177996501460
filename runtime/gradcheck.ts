/**
 * Gradient check: every differentiable primitive's VJP against central finite differences.
 *
 * Each case builds a small graph `L = Σ w ⊙ f(x₁, …)` with a fixed random `w`, runs it through ONNX
 * Runtime to get ∂L/∂xᵢ from our autodiff, and compares with (L(x + h·eⱼ) − L(x − h·eⱼ)) / 2h for every
 * element j of every differentiated input. Cases run in float64 where ONNX Runtime has float64 kernels
 * for the op and its VJP, otherwise in float32 with the loss accumulated in float64 and wider tolerances.
 */
import { Effect } from "effect";
import { type DType, hostArray, type Shape, sizeOf } from "../ir/dtype.ts";
import { Graph, type Tensor } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { grad } from "../ir/autodiff.ts";
import { type Op, RULES } from "../ir/primitives.ts";
import { execute, type ProviderUnavailable } from "./execute.ts";
import { graphStage, plan, type RuntimeError } from "../ir/plan.ts";
import { value } from "../ir/value.ts";
import { random } from "../core/random.ts";

/** Primitives without a gradient to check (integer/boolean outputs, sources). */
export const NON_DIFFERENTIABLE: ReadonlySet<Op> = new Set<Op>([
  "input",
  "variable",
  "constant",
  "equal",
  "less",
  "greater",
  "lessOrEqual",
  "greaterOrEqual",
  "and",
  "or",
  "not",
  "sign",
  "argMax",
  "oneHot",
]);

type Gen = "normal" | "positive" | "distinct" | { readonly indices: number } | { readonly mask: true };

interface Operand {
  readonly shape: Shape;
  readonly gen?: Gen;
  /** Differentiate with respect to this operand (default: true for float operands). */
  readonly wrt?: boolean;
}

export interface GradCase {
  readonly name: string;
  /** Primitives this case exercises (for the coverage count). */
  readonly ops: readonly Op[];
  readonly dtype: "float64" | "float32";
  readonly operands: readonly Operand[];
  readonly f: (...xs: Tensor[]) => Tensor;
  /** The VJP must be exactly zero (stopGradient), rather than match finite differences. */
  readonly zeroGradient?: boolean;
}

const c = (
  name: string,
  ops: Op[],
  dtype: GradCase["dtype"],
  operands: Operand[],
  f: GradCase["f"],
  extra: Partial<GradCase> = {},
): GradCase => ({ name, ops, dtype, operands, f, ...extra });

const F64 = "float64", F32 = "float32";
const pos: Gen = "positive", distinct: Gen = "distinct";

/** The cases; every differentiable primitive appears in at least one. */
export const CASES: readonly GradCase[] = [
  c("matmul (batch × matrix)", ["matmul"], F64, [{ shape: [2, 3, 4] }, { shape: [4, 5] }], o.matmul),
  c("matmul (batched, broadcast)", ["matmul"], F64, [{ shape: [1, 3, 4] }, { shape: [2, 4, 2] }], o.matmul),
  c("add (broadcast)", ["add"], F64, [{ shape: [2, 3] }, { shape: [3] }], o.add),
  c("sub (broadcast both)", ["sub"], F64, [{ shape: [2, 1, 4] }, { shape: [3, 1] }], o.sub),
  c("mul (broadcast)", ["mul"], F64, [{ shape: [2, 3] }, { shape: [2, 1] }], o.mul),
  c("div", ["div"], F64, [{ shape: [2, 3] }, { shape: [2, 3], gen: pos }], o.div),
  c("pow", ["pow"], F64, [{ shape: [2, 3], gen: pos }, { shape: [2, 3] }], o.pow),
  c("max", ["max"], F64, [{ shape: [3, 4], gen: distinct }, { shape: [3, 4], gen: distinct }], o.maximum),
  c(
    "min (broadcast)",
    ["min"],
    F64,
    [{ shape: [3, 4], gen: distinct }, { shape: [4], gen: distinct }],
    o.minimum,
  ),
  c("neg", ["neg"], F64, [{ shape: [5] }], o.neg),
  c("exp", ["exp"], F64, [{ shape: [5] }], o.exp),
  c("log", ["log"], F64, [{ shape: [5], gen: pos }], o.log),
  c("sqrt", ["sqrt"], F64, [{ shape: [5], gen: pos }], o.sqrt),
  c("erf", ["erf"], F32, [{ shape: [6] }], o.erf),
  c("tanh", ["tanh"], F64, [{ shape: [5] }], o.tanh),
  c("sigmoid", ["sigmoid"], F64, [{ shape: [5] }], o.sigmoid),
  c("relu", ["relu"], F64, [{ shape: [8], gen: distinct }], o.relu),
  c("abs", ["abs"], F64, [{ shape: [8], gen: distinct }], o.abs),
  c("gelu (exact)", ["gelu"], F32, [{ shape: [8] }], (x) => o.gelu(x)),
  c("gelu (tanh)", ["gelu"], F32, [{ shape: [8] }], (x) => o.gelu(x, "tanh")),
  c("softmax", ["softmax"], F64, [{ shape: [2, 3, 4] }], (x) => o.softmax(x, 1)),
  c("logSoftmax", ["logSoftmax"], F64, [{ shape: [2, 3, 4] }], (x) => o.logSoftmax(x, -1)),
  c(
    "layerNorm (last axis)",
    ["layerNorm"],
    F64,
    [{ shape: [3, 5] }, { shape: [5] }, { shape: [5] }],
    (x, s, b) => o.layerNorm(x, s, b),
  ),
  c("layerNorm (last two axes)", ["layerNorm"], F64, [{ shape: [2, 3, 4] }, { shape: [3, 4] }, {
    shape: [3, 4],
  }], (
    x,
    s,
    b,
  ) => o.layerNorm(x, s, b, { axis: 1, epsilon: 1e-3 })),
  c("layerNorm (float32 kernel statistics)", ["layerNorm"], F32, [{ shape: [3, 6] }, { shape: [6] }, {
    shape: [6],
  }], (
    x,
    s,
    b,
  ) => o.layerNorm(x, s, b)),
  c("reduceSum", ["reduceSum"], F64, [{ shape: [2, 3, 4] }], (x) => o.sum(x, [0, 2])),
  c("reduceMean (keepDims)", ["reduceMean"], F64, [{ shape: [2, 3, 4] }], (x) => o.mean(x, [1], true)),
  c("reduceMax", ["reduceMax"], F64, [{ shape: [3, 4], gen: distinct }], (x) => o.max(x, [1])),
  c("reshape", ["reshape"], F64, [{ shape: [2, 6] }], (x) => o.reshape(x, [3, -1])),
  c("transpose", ["transpose"], F64, [{ shape: [2, 3, 4] }], (x) => o.transpose(x, [2, 0, 1])),
  c(
    "concat",
    ["concat"],
    F64,
    [{ shape: [2, 1] }, { shape: [2, 3] }, { shape: [2, 2] }],
    (a, b, d) => o.concat([a, b, d], 1),
  ),
  c("split (pieces reordered, one unused)", ["split"], F64, [{ shape: [3, 7] }], (x) => {
    const [a, , b] = o.split(x, [2, 1, 4], 1);
    return o.concat([o.mul(b, 3), a], 1);
  }),
  c("slice (step 1)", ["slice"], F64, [{ shape: [4, 5] }], (x) => o.slice(x, [0, 1], [1, -3], [3, 5])),
  c(
    "slice (step 2, reversed)",
    ["slice"],
    F64,
    [{ shape: [4, 5] }],
    (x) => o.slice(x, [0, 1], [0, -1], [4, -(2 ** 62)], [2, -1]),
  ),
  c("pad", ["pad"], F64, [{ shape: [2, 3] }], (x) => o.pad(x, [1, 0, 0, 2], 0.5)),
  c(
    "gather (2-D indices)",
    ["gather"],
    F64,
    [{ shape: [3, 4] }, { shape: [2, 2], gen: { indices: 4 } }],
    (x, i) => o.gather(x, i, 1),
  ),
  c(
    "gatherElements",
    ["gatherElements"],
    F64,
    [{ shape: [3, 4] }, { shape: [3, 2], gen: { indices: 4 } }],
    (x, i) => o.gatherElements(x, i, 1),
  ),
  c(
    "gatherElements (one pick per row: the one-hot x̄)",
    ["gatherElements"],
    F64,
    [{ shape: [2, 5, 3] }, { shape: [2, 1, 3], gen: { indices: 5 } }],
    (x, i) => o.gatherElements(x, i, 1),
  ),
  c(
    "gatherElements (one pick, negative indices)",
    ["gatherElements"],
    F64,
    [{ shape: [3, 4] }, { shape: [3, 1], gen: { indices: 4 } }],
    (x, i) => o.gatherElements(x, o.sub(i, 4), -1),
  ),
  c(
    "scatterElements (add, repeated indices)",
    ["scatterElements"],
    F64,
    [{ shape: [3, 4] }, { shape: [3, 3], gen: { indices: 4 } }, { shape: [3, 3] }],
    (x, i, u) => o.scatterElements(x, i, u, 1, "add"),
  ),
  c(
    "scatterElements (overwrite)",
    ["scatterElements"],
    F64,
    [{ shape: [4, 2] }, { shape: [2, 2], gen: { indices: -4 } }, { shape: [2, 2] }],
    (x, i, u) => o.scatterElements(x, i, u, 0, "none"),
  ),
  c("where (broadcast)", ["where"], F64, [{ shape: [2, 3], gen: { mask: true } }, { shape: [2, 3] }, {
    shape: [3],
  }], (
    m,
    a,
    b,
  ) => o.where(m, a, b)),
  c(
    "cast (float32 ↔ float64)",
    ["cast"],
    F32,
    [{ shape: [4] }],
    (x) => o.cast(o.exp(o.cast(x, "float64")), "float32"),
  ),
  c("topK (values)", ["topK"], F64, [{ shape: [3, 5], gen: distinct }], (x) => o.topK(x, 3, 1).values),
  c("expand", ["expand"], F64, [{ shape: [3, 1] }], (x) => o.expand(x, [2, 3, 4])),
  c("clip", ["clip"], F64, [{ shape: [10], gen: distinct }], (x) => o.clip(x, -0.5, 0.7)),
  c("clip (min only)", ["clip"], F64, [{ shape: [10], gen: distinct }], (x) => o.clip(x, -0.1)),
  c("clip (max only)", ["clip"], F64, [{ shape: [10], gen: distinct }], (x) => o.clip(x, undefined, 0.2)),
  c("resize (upsample)", ["resize"], F32, [{ shape: [1, 2, 3, 4] }], (x) => o.resize(x, 7, 9)),
  c("resize (downsample)", ["resize"], F32, [{ shape: [2, 1, 8, 6] }], (x) => o.resize(x, 3, 4)),
  c(
    "conv (stride 1, pad 1)",
    ["conv"],
    F32,
    [{ shape: [2, 3, 5, 5] }, { shape: [4, 3, 3, 3] }],
    (x, w) => o.conv(x, w, { pads: [1, 1, 1, 1] }),
  ),
  c(
    "conv (stride 2, asymmetric pad)",
    ["conv"],
    F32,
    [{ shape: [1, 2, 7, 6] }, { shape: [3, 2, 3, 2] }],
    (x, w) => o.conv(x, w, { strides: [2, 2], pads: [1, 0, 0, 1] }),
  ),
  c(
    "conv (dilation 2)",
    ["conv"],
    F32,
    [{ shape: [1, 2, 7, 7] }, { shape: [2, 2, 3, 3] }],
    (x, w) => o.conv(x, w, { dilations: [2, 2] }),
  ),
  c("conv (patch embedding, stride = kernel)", ["conv"], F32, [{ shape: [2, 3, 8, 8] }, {
    shape: [5, 3, 4, 4],
  }], (
    x,
    w,
  ) => o.conv(x, w, { strides: [4, 4] })),
  c(
    "conv (1×1 pointwise: the weight gradient as a batched matmul)",
    ["conv"],
    F32,
    [{ shape: [2, 3, 4, 5] }, { shape: [4, 3, 1, 1] }],
    (x, w) => o.conv(x, w),
  ),
  c(
    "conv (bias input, stride 2)",
    ["conv"],
    F32,
    [{ shape: [2, 3, 5, 5] }, { shape: [4, 3, 3, 3] }, { shape: [4] }],
    (x, w, b) => o.conv(x, w, { strides: [2, 2], pads: [1, 1, 1, 1], bias: b }),
  ),
  c(
    "conv (depthwise with bias, stride 1)",
    ["conv"],
    F32,
    [{ shape: [2, 3, 4, 4] }, { shape: [3, 1, 3, 3] }, { shape: [3] }],
    (x, w, b) => o.conv(x, w, { pads: [1, 1, 1, 1], group: 3, bias: b }),
  ),
  c(
    "conv (group 2, pad 1)",
    ["conv"],
    F32,
    [{ shape: [2, 4, 4, 4] }, { shape: [6, 2, 3, 3] }],
    (x, w) => o.conv(x, w, { pads: [1, 1, 1, 1], group: 2 }),
  ),
  c(
    "conv (depthwise, stride 2, SAME pads 0/1)",
    ["conv"],
    F32,
    [{ shape: [2, 3, 6, 6] }, { shape: [3, 1, 3, 3] }],
    (x, w) => o.conv(x, w, { strides: [2, 2], pads: o.samePads([6, 6], [3, 3], [2, 2]), group: 3 }),
  ),
  c(
    "conv (depthwise ×2 channels, stride 1, SAME)",
    ["conv"],
    F32,
    [{ shape: [2, 2, 5, 4] }, { shape: [4, 1, 3, 3] }],
    (x, w) => o.conv(x, w, { pads: o.samePads([5, 4], [3, 3]), group: 2 }),
  ),
  c(
    "conv (depthwise ×2 channels, strides 2×1, batch-folded w̄)",
    ["conv"],
    F32,
    [{ shape: [2, 2, 5, 4] }, { shape: [4, 1, 3, 3] }],
    (x, w) => o.conv(x, w, { strides: [2, 1], pads: [1, 0, 1, 1], group: 2 }),
  ),
  // 16 channels, a multiple of the NCHWc block (16 with AVX-512, 8 with AVX2): on x86 the forward conv,
  // x̄ and the batch-folded w̄ (a depthwise conv with a feature-map-sized kernel) run on those kernels.
  c(
    "conv (depthwise on NCHWc kernels, stride 1, folded w̄)",
    ["conv"],
    F32,
    [{ shape: [2, 16, 4, 3] }, { shape: [16, 1, 3, 3] }],
    (x, w) => o.conv(x, w, { pads: [1, 1, 1, 1], group: 16 }),
  ),
  c(
    "conv (depthwise on NCHWc kernels, stride 2, dilation 2×1)",
    ["conv"],
    F32,
    [{ shape: [2, 16, 5, 5] }, { shape: [16, 1, 3, 3] }],
    (x, w) => o.conv(x, w, { strides: [2, 2], dilations: [2, 1], pads: [2, 1, 1, 1], group: 16 }),
  ),
  c(
    "conv (group 2, dilation 2, asymmetric pad)",
    ["conv"],
    F32,
    [{ shape: [1, 4, 7, 6] }, { shape: [4, 2, 3, 2] }],
    (x, w) => o.conv(x, w, { dilations: [2, 2], pads: [2, 0, 1, 1], group: 2 }),
  ),
  c(
    "conv (depthwise, dilation 2, stride 2)",
    ["conv"],
    F32,
    [{ shape: [1, 3, 7, 7] }, { shape: [3, 1, 3, 3] }],
    (x, w) => o.conv(x, w, { strides: [2, 2], dilations: [2, 2], pads: [2, 2, 2, 2], group: 3 }),
  ),
  c(
    "convTranspose (stride 2, asymmetric pad)",
    ["convTranspose"],
    F32,
    [{ shape: [1, 3, 4, 3] }, { shape: [3, 2, 3, 2] }],
    (x, w) => o.convTranspose(x, w, { strides: [2, 2], pads: [1, 0, 0, 1], size: [8, 6] }),
  ),
  c(
    "convTranspose (1×1 pointwise)",
    ["convTranspose"],
    F32,
    [{ shape: [2, 4, 3, 3] }, { shape: [4, 3, 1, 1] }],
    (x, w) => o.convTranspose(x, w, { size: [3, 3] }),
  ),
  c(
    "convTranspose (dilation 2)",
    ["convTranspose"],
    F32,
    [{ shape: [1, 2, 3, 3] }, { shape: [2, 2, 3, 3] }],
    (x, w) => o.convTranspose(x, w, { dilations: [2, 2], size: [7, 7] }),
  ),
  c(
    "convTranspose (group 2, s2, asymmetric pad)",
    ["convTranspose"],
    F32,
    [{ shape: [1, 4, 4, 3] }, { shape: [4, 1, 3, 2] }],
    (x, w) => o.convTranspose(x, w, { strides: [2, 2], pads: [1, 0, 0, 1], group: 2, size: [8, 6] }),
  ),
  c(
    "convTranspose (depthwise, s2, SAME pads)",
    ["convTranspose"],
    F32,
    [{ shape: [2, 3, 3, 3] }, { shape: [3, 1, 3, 3] }],
    (x, w) => o.convTranspose(x, w, { strides: [2, 2], pads: [0, 0, 1, 1], group: 3, size: [6, 6] }),
  ),
  c("relu6 (clip at 0 and 6)", ["clip"], F64, [{ shape: [12], gen: distinct }], (x) => o.relu6(o.mul(x, 8))),
  c("identity", ["identity"], F64, [{ shape: [3] }], o.identity),
  c("stopGradient", ["stopGradient"], F64, [{ shape: [3] }], (x) => o.mul(o.stopGradient(x), 2), {
    zeroGradient: true,
  }),
];

export interface CaseResult {
  readonly name: string;
  readonly dtype: DType;
  /** max |analytic − numeric| / max(1, |numeric|) over all checked elements. */
  readonly maxError: number;
  readonly tolerance: number;
  readonly passed: boolean;
}

export interface Report {
  readonly results: readonly CaseResult[];
  /** Differentiable primitives covered by at least one passing case. */
  readonly checkedOps: readonly Op[];
  /** Differentiable primitives with no case or a failing case. */
  readonly failedOps: readonly Op[];
}

const TOLERANCE = { float64: 1e-6, float32: 2e-3 } as const;
const STEP = { float64: 1e-6, float32: 1e-2 } as const;

const operandValues = (
  op: Operand,
  dtype: DType,
  rng: ReturnType<typeof random>,
): { dtype: DType; data: number[] } => {
  const n = sizeOf(op.shape);
  const gen = op.gen ?? "normal";
  if (typeof gen === "object" && "indices" in gen) {
    // Negative `indices` asks for unique indices along axis 0 (overwrite scatter): a permutation prefix.
    if (gen.indices < 0) {
      const perm = Array.from({ length: -gen.indices }, (_, i) => i).sort(() => rng.uniform() - 0.5);
      return { dtype: "int64", data: Array.from({ length: n }, (_, i) => perm[Math.floor(i / op.shape[1])]) };
    }
    return { dtype: "int64", data: Array.from({ length: n }, () => rng.int(gen.indices)) };
  }
  if (typeof gen === "object") {
    return { dtype: "bool", data: Array.from({ length: n }, () => (rng.uniform() < 0.5 ? 1 : 0)) };
  }
  if (gen === "positive") return { dtype, data: Array.from({ length: n }, () => 0.5 + rng.uniform() * 1.5) };
  if (gen === "distinct") {
    // Well-separated values (also across operands), so finite differences never cross a tie or a kink.
    const base = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.173 + 0.05 + 0.08 * rng.uniform());
    return { dtype, data: base.sort(() => rng.uniform() - 0.5) };
  }
  return { dtype, data: Array.from({ length: n }, () => rng.normal()) };
};

/** Runs one case: analytic gradients from the plan vs central differences of the loss. */
export const checkCase = (
  kase: GradCase,
  seed = 0,
): Effect.Effect<CaseResult, RuntimeError | ProviderUnavailable> =>
  Effect.scoped(Effect.gen(function* () {
    const rng = random(seed, kase.name.length, kase.operands.length);
    const g = new Graph(`gradcheck`);
    const values = kase.operands.map((op) => operandValues(op, kase.dtype, rng));
    const inputs = values.map((v, i) => o.input(g, `x${i}`, kase.operands[i].shape, v.dtype));
    const out = kase.f(...inputs);
    const w = Array.from({ length: sizeOf(out.shape) }, () => rng.normal());
    const loss = o.sum(o.mul(o.cast(out, "float64"), o.constant(g, w, out.shape, "float64")));
    const wrt = inputs.filter((t, i) =>
      (kase.operands[i].wrt ?? true) && (t.dtype === "float32" || t.dtype === "float64")
    );
    const grads = grad(loss, wrt);
    g.output("loss", loss);
    grads.forEach((gr, i) => g.output(`grad${i}`, gr));
    const full = yield* execute(plan("gradcheck", g, [graphStage(g)]));
    const feed = (data: readonly (readonly number[])[]) =>
      Object.fromEntries(
        data.map((
          d,
          i,
        ) => [`x${i}`, value(values[i].dtype, hostArray(values[i].dtype, d), kase.operands[i].shape)]),
      );
    const base = values.map((v) => v.data);
    const analytic = yield* full.run(feed(base));
    let maxError = 0;
    for (const [k, t] of wrt.entries()) {
      const i = inputs.indexOf(t);
      const a = Array.from(analytic.get(`grad${k}`)!.data as Float64Array);
      if (kase.zeroGradient) {
        maxError = Math.max(maxError, ...a.map(Math.abs));
        continue;
      }
      for (let j = 0; j < base[i].length; j++) {
        const h = STEP[kase.dtype];
        const round = kase.dtype === "float32" ? Math.fround : (x: number) => x;
        const up = base.map((b) => [...b]), down = base.map((b) => [...b]);
        up[i][j] = round(base[i][j] + h);
        down[i][j] = round(base[i][j] - h);
        const lu = (yield* full.run(feed(up))).get("loss")!.data[0] as number;
        const ld = (yield* full.run(feed(down))).get("loss")!.data[0] as number;
        const numeric = (lu - ld) / (up[i][j] - down[i][j]);
        maxError = Math.max(maxError, Math.abs(a[j] - numeric) / Math.max(1, Math.abs(numeric)));
      }
    }
    const tolerance = kase.zeroGradient ? 0 : TOLERANCE[kase.dtype];
    return { name: kase.name, dtype: kase.dtype, maxError, tolerance, passed: maxError <= tolerance };
  }));

/** Runs every case and checks that every differentiable primitive is covered. */
export const gradcheck = (
  cases: readonly GradCase[] = CASES,
): Effect.Effect<Report, RuntimeError | ProviderUnavailable> =>
  Effect.gen(function* () {
    const results: CaseResult[] = [];
    for (const kase of cases) results.push(yield* checkCase(kase));
    const differentiable = (Object.keys(RULES) as Op[]).filter((op) => !NON_DIFFERENTIABLE.has(op));
    const failedOps = differentiable.filter((op) => {
      const mine = cases.map((k, i) => [k, results[i]] as const).filter(([k]) => k.ops.includes(op));
      return mine.length === 0 || mine.some(([, r]) => !r.passed);
    });
    return { results, checkedOps: differentiable.filter((op) => !failedOps.includes(op)), failedOps };
  });

/** The report as text, ending with `gradcheck: N ops checked, F failed`. */
export const formatReport = (r: Report): string => {
  const lines = r.results.map((x) =>
    `${x.passed ? "ok  " : "FAIL"} ${x.name.padEnd(44)} ${x.dtype}  max rel err ${
      x.maxError.toExponential(2)
    }` +
    `  (tol ${x.tolerance.toExponential(0)})`
  );
  const differentiable = r.checkedOps.length + r.failedOps.length;
  if (r.failedOps.length) lines.push(`failed or unchecked: ${r.failedOps.join(", ")}`);
  lines.push(`gradcheck: ${differentiable} ops checked, ${r.failedOps.length} failed`);
  return lines.join("\n");
};
