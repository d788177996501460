/**
 * Static (calibrated) int8 quantization of a serialized ONNX model's convolutions, in ONNX's QDQ form:
 * every `Conv(x, W[, B])` whose kernel is a float32 initializer (of the named weights) becomes
 *
 *   DQ(x_q) → Conv(·, DQ(W_q, per output channel), DQ(B_q int32, scale s_x · s_W)) → y → Q(y) → DQ
 *
 * where x and y are quantized to uint8 with one scale and zero point per tensor fixed ahead of time from
 * ranges measured on calibration images (`calibrationTensors` names them, `withOutputs` exposes them).
 * When y's only consumer is a Relu or Clip (ReLU6), the Q goes after it: its range starts at 0, so the
 * Q makes the activation redundant. ONNX Runtime's CPU provider fuses each DQ → Conv → Q group into
 * QLinearConv (u8·s8, NHWC kernels, depthwise included) and DQ, DQ → Add → Q into QLinearAdd, so a
 * convolutional backbone runs in int8 from its first Q to its last DQ. Unlike ConvInteger (onnx/quantize.ts,
 * "int8-conv", quantized at run time) this keeps ONNX Runtime's fused, blocked convolution kernels.
 */
import type * as P from "onnx-proto";
import onnxProto from "onnx-proto";
import {
  depthwiseWeightMax,
  EXPORT_WEIGHT_FORMAT,
  floats,
  quantizeRows,
  raw,
  storedWeights,
  WEIGHT_MAX,
  type WeightFormat,
} from "./quantize.ts";

const { onnx } = onnxProto as unknown as typeof P;
const FLOAT = 1, UINT8 = 2, INT32 = 6;
const INT32_MAX = 2 ** 31 - 1;

/** The observed range of one activation tensor over the calibration images. */
export interface Range {
  readonly min: number;
  readonly max: number;
}

/** uint8 quantization parameters of a range: x ≈ (q − zero) · scale, q ∈ [0, 255]. */
export interface Uint8Params {
  readonly scale: number;
  readonly zero: number;
}

/**
 * The asymmetric uint8 parameters of a range. The range is widened to hold 0, because ONNX needs 0 to
 * be exactly representable (zero padding, ReLU's floor); a range starting at 0 gets zero point 0.
 */
export const uint8Params = ({ min, max }: Range): Uint8Params => {
  const lo = Math.min(0, min), hi = Math.max(0, max);
  const scale = hi > lo ? Math.fround((hi - lo) / 255) : 1;
  return { scale, zero: Math.max(0, Math.min(255, Math.round(-lo / scale))) };
};

interface Eligible {
  /** The conv nodes that will be quantized. */
  readonly convs: readonly P.onnx.INodeProto[];
  /** The activation tensors that get a Q/DQ pair, in the order they are produced. */
  readonly tensors: readonly string[];
}

const ACTIVATIONS = new Set(["Relu", "Clip"]);

const eligible = (graph: P.onnx.IGraphProto, weights?: ReadonlySet<string>): Eligible => {
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const consumers = new Map<string, P.onnx.INodeProto[]>();
  for (const n of graph.node ?? []) {
    for (const i of n.input ?? []) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  const convs = (graph.node ?? []).filter((n) => {
    if (n.opType !== "Conv" || (n.domain ?? "") !== "") return false;
    const w = inits.get(n.input![1]);
    const b = n.input!.length === 3 && n.input![2] ? inits.get(n.input![2]) : undefined;
    return w !== undefined && w.dataType === FLOAT && (w.dims ?? []).length === 4 &&
      (!weights || weights.has(w.name!)) && (n.input!.length < 3 || !n.input![2] || b?.dataType === FLOAT);
  });
  const wanted = new Set<string>();
  for (const c of convs) {
    wanted.add(c.input![0]);
    // The output is quantized after a sole Relu/Clip, whose range the Q then covers (it drops out).
    const after = consumers.get(c.output![0]) ?? [];
    const activation = after.length === 1 && ACTIVATIONS.has(after[0].opType ?? "") &&
        (after[0].domain ?? "") === ""
      ? after[0]
      : undefined;
    wanted.add(activation ? activation.output![0] : c.output![0]);
  }
  // Production order: graph inputs first, then node outputs as the (topologically sorted) nodes make them.
  const order = [
    ...(graph.input ?? []).map((v) => v.name!),
    ...(graph.node ?? []).flatMap((n) => n.output ?? []),
  ];
  return { convs, tensors: order.filter((t) => wanted.has(t)) };
};

/** The activation tensors whose ranges `quantizeConvsStatic` needs (see the module comment). */
export const calibrationTensors = (bytes: Uint8Array, weights?: ReadonlySet<string>): readonly string[] =>
  eligible(onnx.ModelProto.decode(bytes).graph!, weights).tensors;

/** The model with the named float32 tensors added to its outputs (for measuring their ranges). */
export const withOutputs = (bytes: Uint8Array, names: readonly string[]): Uint8Array => {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const present = new Set((graph.output ?? []).map((v) => v.name));
  graph.output = [
    ...(graph.output ?? []),
    ...names.filter((n) => !present.has(n)).map((name) => ({
      name,
      type: { tensorType: { elemType: FLOAT } },
    })),
  ] as P.onnx.ValueInfoProto[];
  return onnx.ModelProto.encode(model).finish();
};

export interface StaticQuantized {
  readonly bytes: Uint8Array;
  /** Convolutions rewritten to QDQ form, and activation tensors given a Q/DQ pair. */
  readonly convs: number;
  readonly tensors: number;
}

const scalar = (name: string, dataType: number, data: Float32Array | Uint8Array): P.onnx.ITensorProto => ({
  name,
  dims: [],
  dataType,
  rawData: raw(data),
});

const axisAttribute = (axis: number): P.onnx.IAttributeProto => ({
  name: "axis",
  type: onnx.AttributeProto.AttributeType.INT,
  i: axis,
});

/**
 * The model `bytes` with its parameter convolutions in QDQ int8 (module comment); `ranges` holds every
 * tensor `calibrationTensors` names. Weights are symmetric int8 per output channel in `format` (onnx/quantize.ts
 * `WeightFormat`: by default within ±64, depthwise kernels ±127); biases int32 at scale s_x · s_W, as
 * QLinearConv takes them.
 */
export const quantizeConvsStatic = (
  bytes: Uint8Array,
  ranges: ReadonlyMap<string, Range>,
  weights?: ReadonlySet<string>,
  format: WeightFormat = EXPORT_WEIGHT_FORMAT,
): StaticQuantized => {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const { convs, tensors } = eligible(graph, weights);
  const missing = tensors.filter((t) => !ranges.has(t));
  if (missing.length) {
    throw new Error(`quantize: no calibration range for tensor(s) ${missing.slice(0, 5).join(", ")}`);
  }
  const params = new Map(tensors.map((t) => [t, uint8Params(ranges.get(t)!)]));
  const inits = new Map((graph.initializer ?? []).map((t) => [t.name!, t]));
  const added: P.onnx.ITensorProto[] = [];
  for (const [t, p] of params) {
    added.push(
      scalar(`${t}/scale`, FLOAT, Float32Array.of(p.scale)),
      scalar(`${t}/zero`, UINT8, Uint8Array.of(p.zero)),
    );
  }
  // One DQ per consumer: ONNX Runtime groups a DQ with the one node it feeds.
  let dqCount = 0;
  const dequantized = (t: string, into: P.onnx.INodeProto[]): string => {
    const out = `${t}/dq${dqCount++}`;
    into.push({ opType: "DequantizeLinear", input: [`${t}/u8`, `${t}/scale`, `${t}/zero`], output: [out] });
    return out;
  };
  const quantize = (t: string): P.onnx.INodeProto => ({
    opType: "QuantizeLinear",
    input: [t, `${t}/scale`, `${t}/zero`],
    output: [`${t}/u8`],
  });
  const convSet = new Set(convs);
  const nodes: P.onnx.INodeProto[] = [];
  for (const t of (graph.input ?? []).map((v) => v.name!)) if (params.has(t)) nodes.push(quantize(t));
  for (const node of graph.node ?? []) {
    const inputs = [...(node.input ?? [])];
    const pre: P.onnx.INodeProto[] = [];
    inputs.forEach((name, i) => {
      if (params.has(name) && !(convSet.has(node) && i > 0)) inputs[i] = dequantized(name, pre);
    });
    if (convSet.has(node)) {
      const w = inits.get(node.input![1])!, dims = (w.dims ?? []).map(Number);
      const rows = dims[0], cols = dims.slice(1).reduce((a, b) => a * b, 1);
      // A depthwise kernel (one input channel per group, a group per output channel) may keep 8 bits.
      const group = Number(node.attribute?.find((a) => a.name === "group")?.i ?? 1);
      const depthwise = group > 1 && group === rows && dims[1] === 1;
      const max = depthwise ? depthwiseWeightMax(format) : WEIGHT_MAX[format];
      const { q, scale } = quantizeRows(floats(w), rows, cols, max);
      const stored = storedWeights(q, format);
      const at = (suffix: string) => `${node.output![0]}/${suffix}`;
      // The zero point's type is the weight's: 0 for int8, 128 for uint8 (the same in every channel,
      // which ONNX Runtime's QLinearConv requires).
      const zero = format === "uint8" ? new Uint8Array(rows).fill(128) : new Int8Array(rows);
      added.push(
        { name: at("w_int8"), dims, dataType: stored.dataType, rawData: raw(stored.data) },
        { name: at("w_scale"), dims: [rows], dataType: FLOAT, rawData: raw(scale) },
        { name: at("w_zero"), dims: [rows], dataType: stored.dataType, rawData: raw(zero) },
      );
      pre.push({
        opType: "DequantizeLinear",
        input: [at("w_int8"), at("w_scale"), at("w_zero")],
        output: [at("w")],
        attribute: [axisAttribute(0)],
      });
      inputs[1] = at("w");
      if (node.input!.length === 3 && node.input![2]) {
        const sx = params.get(node.input![0])!.scale;
        const b = floats(inits.get(node.input![2])!);
        const bScale = Float32Array.from(scale, (s) => sx * s);
        // Clamped, not wrapped, should a bias be huge against its scale (a near-zero kernel).
        const bq = Int32Array.from(
          b,
          (v, c) => Math.max(-INT32_MAX, Math.min(INT32_MAX, Math.round(v / bScale[c]))),
        );
        added.push(
          { name: at("b_int32"), dims: [rows], dataType: INT32, rawData: raw(bq) },
          { name: at("b_scale"), dims: [rows], dataType: FLOAT, rawData: raw(bScale) },
        );
        pre.push({
          opType: "DequantizeLinear",
          input: [at("b_int32"), at("b_scale")],
          output: [at("b")],
          attribute: [axisAttribute(0)],
        });
        inputs[2] = at("b");
      }
    }
    nodes.push(...pre, { ...node, input: inputs });
    for (const out of node.output ?? []) if (params.has(out)) nodes.push(quantize(out));
  }
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  graph.node = nodes as P.onnx.NodeProto[];
  graph.initializer = [
    ...(graph.initializer ?? []).filter((t) => used.has(t.name!)),
    ...added,
  ] as P.onnx.TensorProto[];
  return { bytes: onnx.ModelProto.encode(model).finish(), convs: convs.length, tensors: tensors.length };
};
