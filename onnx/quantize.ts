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
 * Weights are symmetric (zero point 0) per column, within ±64 (`WeightFormat`: 7 bits, so that no CPU's
 * kernel saturates); activations get one scale and zero point per tensor and run, computed from the
 * tensor itself. Matmuls of two activations (attention) stay float32.
 */
import type * as P from "onnx-proto";
import onnxProto from "onnx-proto";

const { onnx } = onnxProto as unknown as typeof P;
const FLOAT = 1, UINT8 = 2, INT8 = 3;

/**
 * How quantized weights are stored. Exports use "int7-dw8" (`EXPORT_WEIGHT_FORMAT`); the others are kept so
 * that `bench quantize` can measure them against it (BENCHMARKS.md "Reduced precision (export)").
 *
 * On x86 without VNNI (AVX2, and AVX-512 without VNNI), ONNX Runtime's u8·s8 GEMM kernels (MatMulInteger,
 * ConvInteger, and QLinearConv but for depthwise convolutions) multiply with VPMADDUBSW, which adds each two
 * adjacent uint8 × int8 products into an int16 and saturates at 32,767: with activations up to 255, weights up
 * to ±127 reach 64,770 and are clamped (ONNX Runtime's quantization guide: "When and why do I need to try
 * U8U8?"). VNNI's VPDPBUSD accumulates in int32 and never saturates, so an export that is exact on one CPU can
 * be wrong on another.
 *
 * - "int8": within ±127, full resolution; saturates on x86 without VNNI (the format exports had before).
 * - "int7": within ±64 (ONNX Runtime's `reduce_range`): 255 · 64 · 2 = 32,640 fits, so the same u8·s8 kernels
 *   are exact on every CPU, at half the weight resolution.
 * - "int7-dw8": "int7", except that depthwise convolutions in QDQ form keep ±127. ONNX Runtime runs those as
 *   QLinearConv with depthwise kernels that never add two products in an int16 (MLAS 1.30's AVX2 and AVX-512
 *   ones widen each weight and activation to its own 32-bit lane; the portable one to 16 bits with 32-bit
 *   products), so their full resolution is exact on every CPU too. ConvInteger has no depthwise kernel (its
 *   groups go through the GEMM), so there it is "int7".
 * - "uint8": the int8 values + 128 with zero point 128 (u8·u8): ONNX Runtime's u8·u8 kernels widen to 16 bits
 *   before multiplying and never saturate, but they are other, slower kernels (no VNNI, and QLinearConv
 *   loses its symmetric u8·s8 convolution kernels).
 */
export type WeightFormat = "int8" | "int7" | "int7-dw8" | "uint8";
export const WEIGHT_FORMATS = [
  "int7-dw8",
  "int7",
  "int8",
  "uint8",
] as const satisfies readonly WeightFormat[];

/** The format every export uses: exact on every x86 CPU, with ONNX Runtime's fastest kernels for it. */
export const EXPORT_WEIGHT_FORMAT: WeightFormat = "int7-dw8";

/** The largest |q| of a weight in each format (uint8: around its zero point; see `depthwiseWeightMax`). */
export const WEIGHT_MAX: Record<WeightFormat, number> = { int8: 127, int7: 64, "int7-dw8": 64, uint8: 127 };

/** The largest |q| of a depthwise convolution's kernel in QDQ form (QLinearConv) in each format. */
export const depthwiseWeightMax = (format: WeightFormat): number =>
  format === "int7-dw8" ? 127 : WEIGHT_MAX[format];

/** A weight format's stored values: int8 as they are, uint8 shifted by its zero point 128. */
export const storedWeights = (
  q: Int8Array,
  format: WeightFormat,
): { data: Int8Array | Uint8Array; dataType: number } =>
  format === "uint8"
    ? { data: Uint8Array.from(q, (v) => v + 128), dataType: UINT8 }
    : { data: q, dataType: INT8 };

/** The quantized copy of initializer `name`, named after its data type. */
const quantizedName = (name: string, format: WeightFormat) =>
  `${name}/${format === "uint8" ? "uint8" : "int8"}`;

export interface QuantizeOptions {
  /** Only initializers with these names are quantized (e.g. the model's parameters, not constants). */
  readonly weights?: ReadonlySet<string>;
  /** The op types to rewrite (default both). */
  readonly ops?: readonly ("MatMul" | "Conv")[];
  /** How the weights are stored (default `EXPORT_WEIGHT_FORMAT`). */
  readonly format?: WeightFormat;
}

export interface Quantized {
  readonly bytes: Uint8Array;
  /** MatMul / Conv nodes rewritten, and those left in float32 (activation × activation, other weights). */
  readonly quantized: number;
  readonly kept: number;
}

/**
 * Per-row symmetric weights within ±`max` and their scales: w ≈ q[r, c] · scale[r] (convolution kernels).
 * `max` defaults to the export's 64 (`WEIGHT_MAX`).
 */
export const quantizeRows = (w: Float32Array, rows: number, cols: number, max = WEIGHT_MAX.int7) => {
  const scale = new Float32Array(rows);
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let largest = 0;
    for (let c = 0; c < cols; c++) largest = Math.max(largest, Math.abs(w[r * cols + c]));
    scale[r] = largest > 0 ? largest / max : 1;
    for (let c = 0; c < cols; c++) {
      q[r * cols + c] = Math.max(-max, Math.min(max, Math.round(w[r * cols + c] / scale[r])));
    }
  }
  return { q, scale };
};

/** Per-column symmetric weights within ±`max` and their scales: w ≈ q[k, n] · scale[n]. */
export const quantizeColumns = (w: Float32Array, k: number, n: number, max = WEIGHT_MAX.int7) => {
  const scale = new Float32Array(n);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < n; j++) scale[j] = Math.max(scale[j], Math.abs(w[i * n + j]));
  }
  for (let j = 0; j < n; j++) scale[j] = scale[j] > 0 ? scale[j] / max : 1;
  const q = new Int8Array(k * n);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < n; j++) {
      q[i * n + j] = Math.max(-max, Math.min(max, Math.round(w[i * n + j] / scale[j])));
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
  const format = options.format ?? EXPORT_WEIGHT_FORMAT, max = WEIGHT_MAX[format];
  const weightZero: P.onnx.ITensorProto[] = format === "uint8"
    ? [{ name: "weights/uint8/zero", dims: [], dataType: UINT8, rawData: raw(Uint8Array.of(128)) }]
    : [];
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
      const { q, scale } = conv
        ? quantizeRows(floats(w), k, cols, max)
        : quantizeColumns(floats(w), k, n, max);
      const stored = storedWeights(q, format);
      added.set(name, [
        { name: quantizedName(name, format), dims, dataType: stored.dataType, rawData: raw(stored.data) },
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
        // uint8 weights: one zero point 128 for the whole tensor (ONNX Runtime's ConvInteger takes no other).
        input: [at("x"), quantizedName(name, format), at("x_zero"), ...weightZero.map((t) => t.name!)],
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
    ...(quantized ? weightZero : []),
  ] as P.onnx.TensorProto[];
  return { bytes: onnx.ModelProto.encode(model).finish(), quantized, kept };
};
