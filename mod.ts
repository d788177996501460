/**
 * kappa's public API: what a project of your own imports to compose, validate, compile, train, evaluate
 * and export segmenters. Import this file and nothing else of kappa's, through an import-map entry
 * `"kappa/": "<file URL of the checkout>/"` in your deno.json (README, "Composing a segmenter"):
 *
 * ```ts
 * import * as k from "kappa/mod.ts";
 *
 * const model = k.segmenter({ classes: 11, ignoreIndex: 11, backbone: k.convNet(), psi: k.linearPsi() });
 * const e = k.experiment({ name: "mine", model, data: { dataset: k.camvid, train: k.trainPipeline(),
 *   test: k.testPipeline() }, train: k.trainConfig({ steps: 100 }), eval: k.evalConfig() });
 * const checked = await Effect.runPromise(k.decodeExperiment(e, "mine")); // every violation, with its path
 * console.log(k.printGraph(k.inferenceGraph(checked.model, { batch: 1, height: 64, width: 64, trainSize: [64, 64] })));
 * await Effect.runPromise(k.train(checked, { steps: 2 }));
 * ```
 *
 * The layers under it follow the data flow: specs (`dsl/`) → the interpreter (`interpret/`) → layers
 * (`layers/`) → the IR (`ir/`) → ONNX (`onnx/`) → the runtime (`runtime/`); data loading (`data/`), training (`train/`) and
 * evaluation (`eval/`) are Effect programs over them. README.md, "Architecture", has the whole map.
 */

// ── Specs: pure data (model kinds and their parts, datasets, pipelines, training and evaluation settings)
export * from "./dsl/model.ts";
export * from "./dsl/dataset.ts";
export * from "./dsl/datasets.ts";
export * from "./dsl/training.ts";
export {
  type AnyExperiment,
  DataConfig,
  decodeExperiment,
  Experiment,
  experiment,
  experimentHash,
  experimentJson,
  type ExperimentOf,
  experimentViolations,
  imageLabelInputs,
  loadExperiment,
  withImageLevelSources,
  withOverrides,
} from "./dsl/experiment.ts";
export { decodeSegmenter, SpecError, type Violation } from "./dsl/validate.ts";
export { type ModelSchema, modelViolations, registerModelSchema } from "./dsl/model_kinds.ts";
export { InvalidConfig } from "./dsl/decode.ts";
export { canonicalJson, specHash } from "./dsl/canonical.ts";

// ── The interpreter: spec → graphs, parameter/FLOP tables, model kinds and their tasks
export {
  featureGraph,
  inferenceGraph,
  lossGraph,
  trainingGraph,
  trainingStages,
} from "./interpret/graphs.ts";
/** A frozen backbone in training plans: trained, frozen (no backward) or cached (its outputs fed). */
export { type BackboneMode, featureName, FEATURES, frozenState } from "./interpret/frozen_backbone.ts";
/** The panoptic kind's graphs and names (cost graph → Hungarian matching host stage → loss + update). */
export * as panoptic from "./interpret/panoptic.ts";
export { inferenceShapes, type Shapes, trainShapes, trainSize } from "./interpret/shapes.ts";
export {
  ATTENTIVE_LOSS,
  CLASSES,
  FULL,
  IMAGE_LABELS,
  IMAGE_LABELS_KNOWN,
  IMAGE_LEVEL_LOSS,
  LOGITS,
  LOSS,
  MULTILABEL_LOSS,
  PIXEL_LABELLED,
  PIXEL_LOSS,
  type Ranker,
  SCORES,
  SELECTED,
} from "./interpret/segmenter.ts";
export {
  type ComponentCost,
  describeModel,
  describeTraining,
  formatDescription,
  formatTraining,
  type ModelDescription,
  type StepCost,
  type TrainingDescription,
} from "./interpret/describe.ts";
export { optimizerConfig } from "./interpret/optimizer.ts";

// ── Layers a kind of your own builds its graphs from (the built-in kinds' heads live in layers/)
export { backbone, type Features } from "./layers/backbone.ts";
export { linear } from "./layers/linear.ts";

// ── The engine: IR, ops, autodiff, in-graph optimizers, ONNX export, runtime
export { Graph, GraphError, Tensor } from "./ir/graph.ts";
export * as ops from "./ir/ops.ts";
export { printGraph } from "./ir/print.ts";
export { adamW, minimize, type OptimizerConfig, sgd } from "./ir/optim.ts";
export { exportOnnx } from "./onnx/export.ts";
export { graphStage, type Plan, plan, RuntimeError } from "./ir/plan.ts";
export { type Value, value } from "./ir/value.ts";
export {
  execute,
  type Executor,
  openSession,
  type Provider,
  PROVIDERS,
  ProviderUnavailable,
  type RuntimeOptions,
} from "./runtime/execute.ts";

// ── Data: readers, loaders (Effect streams), validation
export { openDataset } from "./data/open.ts";
export { defaultWorkers, testLoader, trainLoader } from "./data/loader.ts";
export { readRgb, type RgbImage } from "./data/decode.ts";
export { rescaleSize, resizeRgb } from "./data/resize.ts";
export { normalizeRgb } from "./data/normalize.ts";
export type { Dataset } from "./data/dataset.ts";
export { mixedTrainLoader } from "./data/mixed_loader.ts";
export {
  type ImageLevelSource,
  imageLevelSummary,
  multiHot,
  readImageLevelLabels,
} from "./data/image_level.ts";
export type { Batch, BatchLabels, FeatureArray, FeatureBatch, Position, TestBatch } from "./data/batch.ts";
/** A frozen backbone's feature cache: the format, opening (checked) and the training loader that reads it. */
export {
  cachedMixedTrainLoader,
  type CachedRow,
  cachedTrainLoader,
  drawChoice,
  type FeatureCache,
  FeatureCacheError,
  type Manifest as FeatureCacheManifest,
  openFeatureCache,
} from "./data/feature_cache.ts";
export { type ClassTable, readClassTable } from "./data/classes.ts";
export { loadDatasetSpec } from "./data/spec_file.ts";
export { type SplitReport, validateSplit } from "./data/validate.ts";
export type { DataError } from "./data/errors.ts";

// ── Pretrained weights: imported by a name table per architecture (torchvision MobileNetV2 today)
export { importWeights, type ParameterValue, readSafetensorsFile, WeightsError } from "./weights/import.ts";
export { MOBILENET_V2_TORCHVISION } from "./weights/mobilenet_v2_names.ts";
export type { LayerRule, NameTable } from "./weights/name_table.ts";
export { foldBatchNorm } from "./weights/fold_batch_norm.ts";
export { pretrainedValues } from "./interpret/pretrained.ts";

// ── Model kinds: one record per kind (its training, evaluation, prediction and export); registering one
//    (with `registerModelSchema` for its spec) makes train / eval / predict / export run it
export {
  type BatchFeeds,
  type BoundKind,
  type ModelKind,
  type ReadRun,
  type RunReader,
  type Training,
  UnknownModelKind,
  UnsupportedModelKind,
} from "./kinds/kind.ts";
export { bindKind, kindOf, kindPart, registerKind, requireKind } from "./kinds/registry.ts";
export { semanticKind } from "./kinds/semantic.ts";
export { type LoadedRanker, loadRanker, RankerError } from "./kinds/ranker.ts";
export { panopticKind } from "./kinds/panoptic.ts";
export { classifierKind } from "./kinds/classifier.ts";
export { checkClasses, ExperimentDataMismatch } from "./kinds/checks.ts";
export {
  bestMetric,
  type Evaluation,
  type EvaluationRequest,
  type Failure,
  type Headline,
  type RecordMeta,
  writeEvaluationRecord,
} from "./eval/evaluation.ts";
export {
  type ImagePredictor,
  type ImageResult,
  outputStems,
  predictFiles,
  type PredictFilesOptions,
  type Prediction as KindPrediction,
  PredictionStopped,
  type PredictRequest,
  type RunState,
} from "./eval/prediction.ts";
export { parametersDigest } from "./eval/parameters_digest.ts";
export { evalRecordName } from "./eval/eval_record.ts";

// ── Programs: train, evaluate, predict, classify, export
export { train, type TrainOptions, type TrainResult } from "./train/train.ts";
/**
 * Data-parallel training over MPI (README, "Training on several processes (MPI)"): the launch read from
 * mpirun's or srun's environment, Open MPI's world through FFI (a `Collective`), and `train`'s option.
 */
export {
  detectLaunch,
  type Launch,
  LaunchError,
  MpiUnavailable,
  type MpiWorld,
  mpiWorld,
} from "./runtime/mpi.ts";
export type { Collective } from "./ir/collective.ts";
export {
  type DataParallelTraining,
  DataParallelUnsupported,
  PeerRanksFailed,
  RankCountMismatch,
  RankFailure,
} from "./train/data_parallel.ts";
export { type LoadedRun, loadRun } from "./train/load_run.ts";
/** Finding or building a frozen backbone's feature cache under its key (shared by every run and seed). */
export {
  cacheIdentity,
  cacheKey,
  type CacheRequest,
  type CacheUse,
  DEFAULT_CACHE_ROOT,
  ensureFeatureCache,
} from "./train/feature_cache.ts";
export { evaluate, type EvaluateOptions, type EvaluationResult } from "./eval/evaluate.ts";
export { makePredictor, type Prediction, type PredictOptions, type Predictor } from "./eval/predictor.ts";
export { type ExportedModel, type Exporting, exportModel } from "./eval/export_model.ts";
/** What `exportModel` exports for an experiment's state: its kind's graph, outputs and metadata. */
export { exportedModel, NoRunReader, noRuns } from "./kinds/export.ts";
export { baseNovelMIoU, novelMask, UnknownNovelClass } from "./eval/base_novel.ts";
export {
  type NovelClassStats,
  type NovelDiagnosis,
  novelDiagnosisAccumulator,
  type PixelStats,
} from "./eval/novel_diagnosis.ts";
export {
  diagnoseNovelClasses,
  type NovelDiagnosisOptions,
  novelDiagnosisProblem,
} from "./eval/novel_classes.ts";
export { type Classification, classifyImages, type ClassifyOptions } from "./eval/classify.ts";
export {
  evaluatePanoptic,
  evaluatePanopticEach,
  makePanopticPredictor,
  type MergeCalibrationResult,
  type PanopticEvaluation,
  type PanopticPrediction,
} from "./eval/panoptic_eval.ts";
export { mergePanoptic, pasteSegments, prepareMerge } from "./eval/panoptic_merge.ts";
export { panopticAccumulator } from "./eval/panoptic_quality.ts";
export { type EvalRecord, EvalRecordError, readEvalRecord } from "./eval/eval_record.ts";
/** The trivial predictors a model must beat: the most frequent training class (semantic) or stuff class (PQ). */
export { type MajorityBaseline, majorityBaseline } from "./eval/trivial.ts";
export { trivialPanopticQuality } from "./eval/panoptic_eval.ts";
