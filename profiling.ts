/**
 * kappa's profiling API: what timing and research code needs beyond the public API (`mod.ts`), for
 * `bench/` (the timings in BENCHMARKS.md) and `grids/` (the experiment grids behind RESULTS.md), which import
 * kappa only through `mod.ts`, this file and the checked-in experiment specs (`tests/import_rules_test.ts`
 * checks it).
 *
 * Stability: internal but supported. These are the engine's own building blocks, re-exported as they
 * are; they change when the engine does, and whoever changes one updates `bench/` and `grids/` in the same
 * change. A project of your own should need `mod.ts` only; reach here to measure or dissect the engine.
 *
 * Each export says what timing code uses it for. Grouped as the data flows: graphs → FLOP counts →
 * ONNX → ONNX Runtime → plans' host stages → data and evaluation pieces → training's feeds.
 */

// ── Building graphs by hand (the engine benchmark's MLP, the vocabulary benchmark's head)
/** Parameter initializers (`uniform(lo, hi)`, `zeros`) and the function that draws a parameter's values. */
export { initialize, uniform, zeros } from "./ir/init.ts";
/** The trainable parameters of a graph (what `sgd`/`adamW` update), to build a training step by hand. */
export { parameters } from "./ir/optim.ts";
/** A linear layer (`x·W + b`, weights `[in, out]`) over symbolic tensors. */
export { linear } from "./layers/linear.ts";
/** Softmax cross-entropy over class logits, built from primitives (gradient for free). */
export { softmaxCrossEntropy } from "./layers/losses.ts";
/** The segmenter's head (ξ → top-κ → ψ → τ) on given pixel tokens, no backbone: the vocabulary sweep. */
export { segmenterHead } from "./layers/segmenter.ts";
/** Seeded random numbers addressed by (seed, keys…): benchmark inputs that are the same on every run. */
export { random } from "./core/random.ts";

// ── FLOP counts: the nodes a graph's outputs need, and each primitive's rule (its `flops` entry)
/** The nodes needed to compute the given outputs, in topological order: what a step really computes. */
export { liveNodes } from "./ir/live.ts";
/** The rule table, one entry per primitive (shape inference, lowering, VJP, FLOP count) and its types. */
export { type Prim, type Rule, RULES } from "./ir/primitives.ts";
/** Parameters and FLOPs grouped by layer scope, for any graph (`describeModel` is the spec-level one). */
export { describe } from "./ir/describe.ts";

// ── ONNX: lowering a graph to ONNX bytes, and reading a serialized model back
/** Lowers (the needed part of) a graph to a serialized ONNX model for a provider; `decodeOnnx` reads one. */
export { decodeOnnx, toOnnx } from "./onnx/lower.ts";
/** The quantization modes `exportModel` accepts (`int8`, `int8-conv`, `int8-static`). */
export { EXPORT_QUANTIZATIONS, type ExportQuantization } from "./eval/export_model.ts";
/** How quantized weights are stored: the exports' format and the others `bench quantize` measures against it. */
export { EXPORT_WEIGHT_FORMAT, WEIGHT_FORMATS, type WeightFormat } from "./onnx/quantize.ts";
/** int8-static's calibration: tensors' ranges over images, a run's calibrated export, the image count. */
export { calibrateExport, CALIBRATION_IMAGES, calibrationRanges } from "./eval/export_calibration.ts";

// ── ONNX Runtime: a bare session's feeds and runs (for exported files and timing one session alone)
/** `tensorFeeds` wraps values as ONNX Runtime tensors (no copy); `runSession` runs a session on values. */
export { runSession, tensorFeeds } from "./runtime/execute.ts";
/** The arrays a value holds on the host (Float32Array, BigInt64Array, …). */
export type { HostArray } from "./ir/dtype.ts";

// ── Plans: host stages between graph stages (timing marks, the Hungarian matching)
/** A plan's stages: a graph stage or a host stage (a function of named arrays run between graphs). */
export type { HostStage, Stage } from "./ir/plan.ts";
/** The Hungarian matching host stage of the panoptic training plan, to time or rebuild that plan's parts. */
export { matchingStage } from "./host/matching_stage.ts";
/**
 * The gradient all-reduce of data-parallel training (host/all_reduce.ts), its bucketing and its time and
 * byte counters: `bench scale` times it alone, one bucket against buckets and one call per parameter.
 */
export {
  buckets,
  type GradientName,
  gradientReduceStage,
  type ReduceStats,
  reduceStats,
} from "./host/all_reduce.ts";

// ── Data and evaluation pieces, to run the export's preprocessing and metrics outside `evaluate`
/** libvips' bilinear resize and the mean/std normalization of an RGB image, as the data pipeline does. */
export { resizeRgb } from "./data/resize.ts";
export { normalizeRgb } from "./data/normalize.ts";
/** The panoptic targets of a crop (a mask per segment, padded to N) and their stacking into a batch. */
export { panopticTargets, stackTargets } from "./data/panoptic_targets.ts";
/** Fitting an image to the exported model's size, and predicting the way a user of the exported file does. */
export { exportInput, fitSize, predictAtExportSize } from "./eval/export_size.ts";
/** The per-class area accumulator behind mIoU / aAcc, fed one prediction and label at a time. */
export { segmentationAccumulator } from "./eval/segmentation_metrics.ts";

// ── Training's pieces: dropout noise feeds, checkpoints' file format
/** Dropout noise: the prefix of noise inputs' names, and the seeded feed of one noise input at a step. */
export { NOISE } from "./layers/dropout.ts";
export { noiseFeed } from "./train/run_state.ts";
/** Safetensors encoding (what checkpoints are): hands initial parameters and batches to the PyTorch peer. */
export { encodeSafetensors, type Tensor as StoredTensor } from "./io/safetensors.ts";
