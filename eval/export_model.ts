/**
 * Export of a trained model as one ONNX file: the inference graph at the training crop size, parameters
 * embedded as initializers, the batch dimension symbolic. Which outputs and what `metadata_props` say is
 * the model kind's (`Exporting`, one per kind in `kinds/`); this is the one path every kind exports
 * through. Position embeddings and upsampling matrices are constants of the traced size, so the height
 * and width cannot be symbolic: the metadata says how to fit an image to them (eval/export_size.ts).
 */
import type { Effect } from "effect";
import type { AnyExperiment } from "../dsl/experiment.ts";
import type { Graph } from "../ir/graph.ts";
import { inferenceShapes, type Shapes } from "../interpret/shapes.ts";
import { exportOnnx } from "../onnx/export.ts";
import { EXPORT_WEIGHT_FORMAT, quantizeMatMuls, type WeightFormat } from "../onnx/quantize.ts";
import { quantizeConvsStatic, type Range } from "../onnx/quantize_static.ts";
import type { HostArray, Shape } from "../ir/dtype.ts";
import type { Value } from "../ir/value.ts";
import type { Failure } from "./evaluation.ts";
import type { RunState } from "./prediction.ts";

/** What a kind exports: its inference graph, the outputs kept, and what the metadata says about them. */
export interface ExportedModel {
  /** The inference graph at `shapes` (the training crop, the traced batch). */
  graph(shapes: Shapes): Graph;
  /** The outputs to export, in order; those the graph lacks (e.g. `scores` without a ranking) are left out. */
  readonly outputs: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
}

/** A model kind's export, for one run's checkpoint (whose calibrated settings may enter the metadata). */
export interface Exporting {
  open(run: RunState, print: (line: string) => void): Effect.Effect<ExportedModel, Failure>;
}

/** The traced batch size: exported as the symbolic dimension `batch`. */
const TRACE_BATCH = 2;

export interface ExportedSignature {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly (number | string)[];
}

/**
 * Reduced-precision export (onnx/quantize.ts, onnx/quantize_static.ts): "int8" = the parameters' matmuls
 * dynamically quantized to int8 (ONNX Runtime's CPU provider runs them faster than float32); "int8-conv" =
 * the convolutions too, at run time (measured slower there: its ConvInteger loses the fused float32
 * convolution kernels; BENCHMARKS.md); "int8-static" = the matmuls as in "int8" and the convolutions in
 * QDQ form with activation scales calibrated ahead of time (eval/export_calibration.ts), which ONNX
 * Runtime runs as QLinearConv. All three store weights in 7 bits (onnx/quantize.ts `EXPORT_WEIGHT_FORMAT`),
 * so that the same file is exact on x86 CPUs with and without VNNI.
 */
export type ExportQuantization = "int8" | "int8-conv" | "int8-static";
export const EXPORT_QUANTIZATIONS = [
  "int8",
  "int8-conv",
  "int8-static",
] as const satisfies readonly ExportQuantization[];

/** How each weight format's values are written into the metadata's note. */
const WEIGHT_NOTE: Record<WeightFormat, string> = {
  "int7-dw8": "symmetric int8 within ±64 (7 bits: no two uint8 × int8 products can saturate the int16 pair " +
    "sum of x86 CPUs without VNNI), depthwise QLinearConv kernels within ±127 (their kernels take no pairs)",
  int7: "symmetric int8 within ±64 (7 bits: no two uint8 × int8 products can saturate the int16 pair sum " +
    "of x86 CPUs without VNNI)",
  int8: "symmetric int8 within ±127",
  uint8: "uint8 with zero point 128 (±127 around it)",
};

const quantizationNote = (quantize: ExportQuantization, format: WeightFormat): string => {
  const w = WEIGHT_NOTE[format];
  return {
    int8: `int8: MatMul weights per output column, ${w}; activations quantized per tensor at run time ` +
      "(DynamicQuantizeLinear + MatMulInteger); convolutions, attention's activation matmuls and everything " +
      "else float32",
    "int8-conv": `int8-conv: MatMul weights per output column and Conv kernels per output channel, ${w}; ` +
      "activations quantized per tensor at run time (DynamicQuantizeLinear + MatMulInteger / ConvInteger); " +
      "attention's activation matmuls and everything else float32",
    "int8-static": `int8-static: Conv kernels per output channel, ${w}, biases int32; each convolution's ` +
      "input and output uint8 per tensor with scales calibrated on training images (QDQ, run as QLinearConv); " +
      "MatMul weights as in int8 (activations quantized at run time); everything else float32",
  }[quantize];
};

/** Dynamic int8 rewrite of the parameters' matmuls (and convolutions), per quantization. */
const DYNAMIC_OPS = { int8: ["MatMul"], "int8-conv": ["MatMul", "Conv"], "int8-static": ["MatMul"] } as const;

export const exportModel = (
  e: AnyExperiment,
  state: ReadonlyMap<string, Value>,
  model: ExportedModel,
  { quantize, ranges, classNames, weightFormat = EXPORT_WEIGHT_FORMAT }: {
    readonly quantize?: ExportQuantization;
    /** The dataset's class names, in class order: written as `kappa.class_names` (a JSON array). */
    readonly classNames?: readonly string[];
    /** "int8-static": the calibrated range of every tensor it quantizes (eval/export_calibration.ts). */
    readonly ranges?: ReadonlyMap<string, Range>;
    /** How the quantized weights are stored (onnx/quantize.ts; other than the default only to measure). */
    readonly weightFormat?: WeightFormat;
  } = {},
) => {
  const shapes = inferenceShapes(e, TRACE_BATCH);
  const { height, width } = shapes;
  const g = model.graph(shapes);
  const outputs = model.outputs.filter((n) => g.outputs.has(n));
  const values = new Map<string, HostArray>([...state].map(([k, v]) => [k, v.data as HostArray]));
  // The class names are the dataset's, whatever the kind: any user of the file can label its outputs.
  const described: Readonly<Record<string, string>> = {
    ...model.metadata,
    ...(classNames ? { "kappa.class_names": JSON.stringify(classNames) } : {}),
  };
  const metadata = quantize
    ? { ...described, "kappa.quantization": quantizationNote(quantize, weightFormat) }
    : described;
  const float = exportOnnx(g, {
    outputs,
    state: values,
    dynamicBatch: TRACE_BATCH,
    docString:
      `kappa export of ${e.name}: images float32 [batch,3,${height},${width}] normalized (x-mean)/std, RGB; ` +
      "see metadata_props kappa.* for the size, mean/std and how to map classes back",
    metadata,
  });
  const weights = new Set(state.keys());
  const bytes = quantize
    ? quantizeMatMuls(staticConvs(float, quantize, weights, weightFormat, ranges), {
      weights,
      ops: DYNAMIC_OPS[quantize],
      format: weightFormat,
    }).bytes
    : float;
  const sig = (name: string, dtype: string, shape: Shape): ExportedSignature => ({
    name,
    dtype,
    shape: shape.map((d, i) => (i === 0 ? "batch" : d)),
  });
  return {
    bytes,
    metadata,
    inputs: [sig("images", "float32", [TRACE_BATCH, 3, height, width])],
    outputs: outputs.map((n) => sig(n, g.outputs.get(n)!.dtype, g.outputs.get(n)!.shape)),
  };
};

/** With "int8-static", the convolutions in calibrated QDQ form; otherwise `float` as it is. */
const staticConvs = (
  float: Uint8Array,
  quantize: ExportQuantization,
  weights: ReadonlySet<string>,
  format: WeightFormat,
  ranges?: ReadonlyMap<string, Range>,
) => {
  if (quantize !== "int8-static") return float;
  if (!ranges) {
    throw new Error("export --quantize int8-static: no calibration ranges (eval/export_calibration.ts)");
  }
  return quantizeConvsStatic(float, ranges, weights, format).bytes;
};
