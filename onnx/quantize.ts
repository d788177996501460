/**
 * Dynamic int8 quantization of a serialized ONNX model's weight matmuls, for CPU inference: every
 * `MatMul(x, W)` whose W is a float32 [K, N] initializer (of the named weights, when given) becomes
 *
 *   DynamicQuantizeLinear(x) → (x_q uint8, x_scale, x_zero) ;  W_q int8, W_scale [N] (per output column)
 *   MatMulInteger(x_q, W_q, x_zero) → int32 ;  Cast → float32 ;  · (x_scale · W_scale)
 *
 * and likewise every `Conv(x, W)` or `Conv(x, W, B)` with initializers W (and B) becomes ConvInteger with
 * the same attributes and one weight scale per output channel, B added after the rescale.
 *
 * Standard ONNX ops only (any ONNX Runtime runs them); ONNX Runtime's CPU provider fuses the chain into
 * its MatMulIntegerToFloat / DynamicQuantizeMatMul kernels (u8·s8 on VNNI where the CPU has it).
 * Weights are symmetric (zero point 0, ±127) per column; activations get one scale and zero point per
 * tensor and run, computed from the tensor itself. Matmuls of two activations (attention) stay float32.
 */
import type * as P from "onnx-proto";
import onnxProto from "onnx-proto";

const { onnx } = onnxProto as unknown as typeof P;
const FLOAT = 1, INT8 = 3;

export interface QuantizeOptions {
  /** Only initializers with these names are quantized (e.g. the model's parameters, not constants). */
  readonly weights?: ReadonlySet<string>;
  /** The op types to rewrite (default both). */
  readonly ops?: readonly ("MatMul" | "Conv")[];
}

export interface Quantized {
  readonly bytes: Uint8Array;
  /** MatMul / Conv nodes rewritten, and those left in float32 (activation × activation, other weights). */
  readonly quantized: number;
  readonly kept: number;
}

/** Per-row symmetric int8 weights and their scales: w ≈ q[r, c] · scale[r] (convolution kernels). */
export const quantizeRows = (w: Float32Array, rows: number, cols: number) => {
  const scale = new Float32Array(rows);
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(w[r * cols + c]));
    scale[r] = max > 0 ? max / 127 : 1;
    for (let c = 0; c < cols; c++) {
      q[r * cols + c] = Math.max(-127, Math.min(127, Math.round(w[r * cols + c] / scale[r])));
    }
  }
  return { q, scale };
};

/** Per-column symmetric int8 weights and their scales: w ≈ q[k, n] · scale[n]. */
export const quantizeColumns = (w: Float32Array, k: number, n: number) => {
  const scale = new Float32Array(n);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < n; j++) scale[j] = Math.max(scale[j], Math.abs(w[i * n + j]));
  }
  for (let j = 0; j < n; j++) scale[j] = scale[j] > 0 ? scale[j] / 127 : 1;
  const q = new Int8Array(k * n);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < n; j++) {
      q[i * n + j] = Math.max(-127, Math.min(127, Math.round(w[i * n + j] / scale[j])));
    }
  }
  return { q, scale };
};

/** A float32 initializer's values. */
export const floats = (t: P.onnx.ITensorProto): Float32Array => {
  if (t.rawData && t.rawData.length) {
    // A copy: the decoded bytes need not be aligned (and may be a view into a shared Buffer).
    return new Float32Array(new Uint8Array(t.rawData).buffer);
  }
  return Float32Array.from(t.floatData ?? []);
};

/** A typed array's bytes, for `rawData`. */
export const raw = (a: Int8Array | Uint8Array | Int32Array | Float32Array) =>
  new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The model `bytes` with its weight matmuls in int8 (see the module comment). */
export const quantizeMatMuls = (bytes: Uint8Array, options: QuantizeOptions = {}): Quantized => {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph!;
  const initializers = graph.initializer ?? [];
  const inits = new Map(initializers.map((t) => [t.name, t]));
  const added = new Map<string, P.onnx.ITensorProto[]>();
  const nodes: P.onnx.INodeProto[] = [];
  let quantized = 0, kept = 0;
  const ops = new Set<string>(options.ops ?? ["MatMul", "Conv"]);
  for (const node of graph.node ?? []) {
    const conv = node.opType === "Conv";
    if (!ops.has(node.opType ?? "") || (node.domain ?? "") !== "") {
      nodes.push(node);
      continue;
    }
    const w = inits.get(node.input![1]);
    const dims = (w?.dims ?? []).map(Number);
    const bias = conv && node.input!.length === 3 ? inits.get(node.input![2]) : undefined;
    if (
      !w || w.dataType !== FLOAT || dims.length !== (conv ? 4 : 2) ||
      node.input!.length > (bias?.dataType === FLOAT ? 3 : 2) ||
      (options.weights && !options.weights.has(w.name!))
    ) {
      kept++;
      nodes.push(node);
      continue;
    }
    const name = w.name!;
    if (!added.has(name)) {
      // MatMul: W [K, N], one scale per output column. Conv: W [C_out, C_in/group, kh, kw], one scale
      // per output channel, shaped [C_out, 1, 1] to broadcast over the output's [b, C_out, h, w].
      const [k, n] = dims;
      const cols = dims.slice(1).reduce((a, b) => a * b, 1);
      const { q, scale } = conv ? quantizeRows(floats(w), k, cols) : quantizeColumns(floats(w), k, n);
      added.set(name, [
        { name: `${name}/int8`, dims, dataType: INT8, rawData: raw(q) },
        { name: `${name}/scale`, dims: conv ? [k, 1, 1] : [n], dataType: FLOAT, rawData: raw(scale) },
      ]);
    }
    if (bias && !added.has(bias.name!)) {
      // B [C_out] as [C_out, 1, 1], to broadcast over the output's [b, C_out, h, w] like the scale.
      added.set(bias.name!, [{
        name: `${bias.name}/chw`,
        dims: [dims[0], 1, 1],
        dataType: FLOAT,
        rawData: raw(floats(bias)),
      }]);
    }
    const out = node.output![0], base = `${out}/int8`;
    const at = (suffix: string) => `${base}/${suffix}`;
    nodes.push(
      {
        opType: "DynamicQuantizeLinear",
        input: [node.input![0]],
        output: [at("x"), at("x_scale"), at("x_zero")],
      },
      {
        opType: conv ? "ConvInteger" : "MatMulInteger",
        input: [at("x"), `${name}/int8`, at("x_zero")],
        output: [at("int32")],
        attribute: conv ? node.attribute : [],
      },
      {
        opType: "Cast",
        input: [at("int32")],
        output: [at("float")],
        attribute: [{ name: "to", type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }],
      },
      { opType: "Mul", input: [at("x_scale"), `${name}/scale`], output: [at("scale")] },
      { opType: "Mul", input: [at("float"), at("scale")], output: [bias ? at("unbiased") : out] },
      ...(bias ? [{ opType: "Add", input: [at("unbiased"), `${bias.name}/chw`], output: [out] }] : []),
    );
    quantized++;
  }
  const used = new Set(nodes.flatMap((nd) => nd.input ?? []));
  graph.node = nodes as P.onnx.NodeProto[];
  graph.initializer = [
    ...initializers.filter((t) => used.has(t.name!)),
    ...[...added.values()].flat(),
  ] as P.onnx.TensorProto[];
  return { bytes: onnx.ModelProto.encode(model).finish(), quantized, kept };
};
