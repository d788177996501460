/**
 * Export of a trained segmenter as one ONNX file: the inference graph at the training crop size,
 * parameters embedded as initializers, the batch dimension symbolic. The fixed size, the normalization
 * and how to map classes back to an image's own size are written into `metadata_props`
 * (eval/export_size.ts): position embeddings and upsampling matrices are constants of the traced size,
 * so the height and width cannot be symbolic.
 */
import type { Experiment } from "../dsl/experiment.ts";
import type { MergeThresholds } from "../dsl/model.ts";
import { CLASSES, LOGITS, type Ranker, SCORES, SELECTED } from "../interpret/segmenter.ts";
import { inferenceGraph } from "../interpret/graphs.ts";
import { CLASS_PROBABILITIES, MASK_PROBABILITIES } from "../interpret/panoptic.ts";
import { exportOnnx } from "../onnx/export.ts";
import { quantizeMatMuls } from "../onnx/quantize.ts";
import { quantizeConvsStatic, type Range } from "../onnx/quantize_static.ts";
import { exportMetadata } from "./export_size.ts";
import type { HostArray, Shape } from "../ir/dtype.ts";
import type { Value } from "../ir/value.ts";

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
 * Runtime runs as QLinearConv.
 */
export type ExportQuantization = "int8" | "int8-conv" | "int8-static";
export const EXPORT_QUANTIZATIONS = [
  "int8",
  "int8-conv",
  "int8-static",
] as const satisfies readonly ExportQuantization[];

const QUANTIZATION_NOTE: Record<ExportQuantization, string> = {
  int8: "int8: MatMul weights per output column, symmetric int8; activations quantized per tensor at run " +
    "time (DynamicQuantizeLinear + MatMulInteger); convolutions, attention's activation matmuls and " +
    "everything else float32",
  "int8-conv": "int8-conv: MatMul weights per output column and Conv kernels per output channel, " +
    "symmetric int8; activations quantized per tensor at run time (DynamicQuantizeLinear + MatMulInteger / " +
    "ConvInteger); attention's activation matmuls and everything else float32",
  "int8-static": "int8-static: Conv kernels per output channel, symmetric int8, biases int32; each " +
    "convolution's input and output uint8 per tensor with scales calibrated on training images (QDQ, run as " +
    "QLinearConv); MatMul weights as in int8 (activations quantized at run time); everything else float32",
};

/** Dynamic int8 rewrite of the parameters' matmuls (and convolutions), per quantization. */
const DYNAMIC_OPS = { int8: ["MatMul"], "int8-conv": ["MatMul", "Conv"], "int8-static": ["MatMul"] } as const;

export const exportModel = (
  e: Experiment,
  state: ReadonlyMap<string, Value>,
  ranker?: Ranker,
  { quantize, merge, ranges, classNames }: {
    readonly quantize?: ExportQuantization;
    /** The dataset's class names, in class order: written as `kappa.class_names` (a JSON array). */
    readonly classNames?: readonly string[];
    /** "int8-static": the calibrated range of every tensor it quantizes (eval/export_calibration.ts). */
    readonly ranges?: ReadonlyMap<string, Range>;
    /** A panoptic run's merge thresholds for the metadata (default: the spec's `merge`). */
    readonly merge?: MergeThresholds;
  } = {},
) => {
  const [height, width] = e.data.train.cropSize;
  const g = inferenceGraph(e.model, { batch: TRACE_BATCH, height, width, trainSize: [height, width] }, {
    ranker,
  });
  // A panoptic model exports probabilities; mask-wise merging into a panoptic map is the host step
  // (eval/panoptic_merge.ts), described in the metadata.
  const outputs = e.model._tag === "PanopticSegmenter"
    ? [CLASS_PROBABILITIES, MASK_PROBABILITIES]
    : [CLASSES, LOGITS, SCORES, SELECTED].filter((n) => g.outputs.has(n));
  const values = new Map<string, HostArray>([...state].map(([k, v]) => [k, v.data as HostArray]));
  const described: Record<string, string> = {
    ...(e.model._tag === "PanopticSegmenter" ? panopticMetadata(e, merge) : exportMetadata(e)),
    ...(classNames ? { "kappa.class_names": JSON.stringify(classNames) } : {}),
  };
  const metadata = quantize ? { ...described, "kappa.quantization": QUANTIZATION_NOTE[quantize] } : described;
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
    ? quantizeMatMuls(staticConvs(float, quantize, weights, ranges), { weights, ops: DYNAMIC_OPS[quantize] })
      .bytes
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
  ranges?: ReadonlyMap<string, Range>,
) => {
  if (quantize !== "int8-static") return float;
  if (!ranges) {
    throw new Error("export --quantize int8-static: no calibration ranges (eval/export_calibration.ts)");
  }
  return quantizeConvsStatic(float, ranges, weights).bytes;
};

/** The panoptic export's metadata: the semantic export's size and normalization, and merging in words. */
const panopticMetadata = (e: Experiment, merge?: MergeThresholds): Record<string, string> => {
  const m = e.model._tag === "PanopticSegmenter" ? merge ?? e.model.merge : undefined;
  return {
    ...exportMetadata(e),
    "kappa.postprocess":
      "mask-wise merging (host step, kappa eval/panoptic_merge.ts): per query the class = " +
      "argmax of classProbabilities[:, :K] (void column K dropped), confidence = that probability; binary mask = " +
      "maskProbabilities[:, :, :h, :w] > maskThreshold; paste queries by confidence x mean mask " +
      "probability, best first, keeping one if confidence >= thingThreshold / stuffThreshold and > overlapThreshold of its " +
      "mask is still free (values in kappa.merge); it claims the free pixels; same-class stuff joins one segment; unclaimed pixels are void (0); " +
      "then the segment ids to H0 x W0 by nearest neighbour: row y reads floor((y + 0.5) * h / H0), column x " +
      "reads floor((x + 0.5) * w / W0) (kappa predict --export-size follows this)",
    "kappa.outputs": "classProbabilities [batch, N, K+1] (void last), maskProbabilities [batch, N, H, W] " +
      "(softmax over the N queries per pixel)",
    ...(m ? { "kappa.merge": JSON.stringify(m) } : {}),
  };
};
