/**
 * kappa's data layer: dataset specs, readers, seeded augmentation, loaders as Effect streams, validation.
 *
 * Start with a spec (`folder`, `cocoPanoptic`, `procedural`, or the built-in `camvid` / `coco133`) and a
 * pipeline (`trainPipeline`, `testPipeline`), then stream batches with `trainLoader` / `testLoader`.
 */
export * from "../dsl/dataset.ts";
export * from "./classes.ts";
export * from "./errors.ts";
export { camvid, coco133 } from "../dsl/datasets.ts";
export type { Batch, Position, TestBatch } from "./batch.ts";
export {
  defaultWorkers,
  type LoaderOptions,
  testLoader,
  type TestLoaderOptions,
  trainLoader,
  type TrainLoaderOptions,
} from "./loader.ts";
export { epochOrder, SHUFFLE } from "./order.ts";
export { AUGMENT, sampleRandom } from "./pipeline.ts";
export { hideClasses, imageLabelsOf } from "./labels.ts";
export { slideWindows, type Window } from "./slide.ts";
export type { Dataset, LabeledImage, SampleRef } from "./dataset.ts";
export { openDataset } from "./open.ts";
export type { CocoDataset, PanopticImage, Segment } from "./coco.ts";
export { type SplitReport, type ValidateOptions, validateSplit } from "./validate.ts";
export { type DataArgs, dataCommand, parseDataArgs } from "./command.ts";
export { loadDatasetSpec } from "./spec_file.ts";
export {
  countTruncation,
  NO_TRUNCATION,
  type PanopticTargets,
  panopticTargets,
  stackTargets,
  type TargetBatch,
  type TargetSegment,
  truncationReport,
  type TruncationTotals,
} from "./panoptic_targets.ts";
