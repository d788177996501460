/**
 * A sample task: everything needed to produce one processed sample, as plain data, so it can run on the
 * main thread or be posted to a Worker unchanged.
 */
import { Effect } from "effect";
import type { Dataset, LabeledImage, SampleRef } from "./dataset.ts";
import { maxPixelsOf, readRgb } from "./decode.ts";
import { type ImageLevelSample, multiHot } from "./image_level.ts";
import { type FileError, InvalidLabels } from "./errors.ts";
import type { CocoDataset } from "./coco.ts";
import {
  drawRandom,
  imageLevelDrawRandom,
  type ProcessedSample,
  sampleRandom,
  type TestSample,
  testSample,
  trainSample,
} from "./pipeline.ts";
import type { DatasetSpec, TestPipeline, TrainPipeline } from "../dsl/dataset.ts";

/** Where the dataset of a task comes from (a Worker re-opens it from this). */
export interface DatasetSource {
  readonly spec: DatasetSpec;
  readonly split: string;
  readonly specFile: string;
}

/** One training sample to produce: the sample and its address in the training order. */
export interface TrainTask {
  readonly kind: "train";
  readonly source: DatasetSource;
  readonly pipeline: TrainPipeline;
  readonly sample: SampleRef;
  readonly seed: number;
  readonly epoch: number;
  readonly index: number;
  /** Also read the panoptic annotation (segment ids and segments) and carry it through the pipeline. */
  readonly panoptic?: boolean;
}

/** One test sample to produce. */
export interface TestTask {
  readonly kind: "test";
  readonly source: DatasetSource;
  readonly pipeline: TestPipeline;
  readonly sample: SampleRef;
}

/**
 * One image of an image-level source (no mask) through the training pipeline: its labels are all
 * ignore and its image-level labels are its tags. `source` is the pixel-labelled dataset whose class
 * table (K, ignore index) the sample shares.
 */
export interface ImageLevelTask {
  readonly kind: "imageLevel";
  readonly source: DatasetSource;
  readonly pipeline: TrainPipeline;
  readonly sample: ImageLevelSample;
  readonly seed: number;
  readonly epoch: number;
  readonly index: number;
}

/**
 * One training sample under augmentation draw `draw` of a frozen backbone's feature cache: the training
 * pipeline seeded by (draw, the sample's index in the split) only (`drawRandom`), so the draw is the
 * same for every run that reads the cache.
 */
export interface DrawTask {
  readonly kind: "draw";
  readonly source: DatasetSource;
  readonly pipeline: TrainPipeline;
  readonly sample: SampleRef;
  readonly draw: number;
  /** The sample's index in the split's listing. */
  readonly index: number;
  readonly panoptic?: boolean;
}

/**
 * One image of an image-level source under augmentation draw `draw` of its feature cache: as an
 * `ImageLevelTask` (labels all ignore, image-level labels its tags), the pipeline seeded by (draw, the
 * image's index in the source) only (`imageLevelDrawRandom`).
 */
export interface ImageLevelDrawTask {
  readonly kind: "imageLevelDraw";
  readonly source: DatasetSource;
  readonly pipeline: TrainPipeline;
  readonly sample: ImageLevelSample;
  readonly draw: number;
  /** The image's index in the source's listing. */
  readonly index: number;
}

export type SampleTask = TrainTask | TestTask | ImageLevelTask | DrawTask | ImageLevelDrawTask;

/** The result of a task of kind K. */
export type TaskResult<T extends SampleTask> = T extends TestTask ? TestSample : ProcessedSample;

/** Decodes an image-level image as a sample whose every pixel is ignored. */
const readImageLevel = (dataset: Dataset, sample: ImageLevelSample): Effect.Effect<LabeledImage, FileError> =>
  Effect.map(readRgb(sample.image, { maxPixels: maxPixelsOf(dataset.spec) }), (rgb) => ({
    id: sample.id,
    width: rgb.width,
    height: rgb.height,
    image: rgb.data,
    labels: new Int32Array(rgb.width * rgb.height).fill(dataset.classes.ignoreIndex),
  }));

/** The sample with its panoptic annotation (a dataset without `readPanoptic` has none: an error). */
const readWithSegments = (dataset: Dataset, sample: SampleRef): Effect.Effect<LabeledImage, FileError> => {
  const reader = (dataset as Partial<CocoDataset>).readPanoptic;
  if (!reader) {
    return Effect.fail(
      new InvalidLabels({
        file: sample.mask,
        message: `${dataset.name} has no panoptic segments (COCO panoptic only)`,
      }),
    );
  }
  return Effect.map(Effect.all([dataset.read(sample), reader(sample)]), ([raw, p]) => ({
    ...raw,
    panoptic: {
      segmentIds: p.segmentIds,
      segments: p.segments.map(({ id, category, isThing, isCrowd }) => ({ id, category, isThing, isCrowd })),
    },
  }));
};

/** Decodes the task's sample and runs its pipeline. */
export const runTask = <T extends SampleTask>(
  dataset: Dataset,
  task: T,
): Effect.Effect<TaskResult<T>, FileError> => {
  if (task.kind === "imageLevel" || task.kind === "imageLevelDraw") {
    const k = dataset.classes.names.length;
    const rng = task.kind === "imageLevel"
      ? sampleRandom(task.seed, task.epoch, task.index)
      : imageLevelDrawRandom(task.draw, task.index);
    return Effect.flatMap(readImageLevel(dataset, task.sample), (raw) =>
      Effect.map(
        trainSample(dataset, task.pipeline, raw, rng),
        (s): ProcessedSample => ({ ...s, imageLabels: multiHot(task.sample, k) }),
      )) as Effect.Effect<TaskResult<T>, FileError>;
  }
  return Effect.flatMap(
    task.kind !== "test" && task.panoptic
      ? readWithSegments(dataset, task.sample)
      : dataset.read(task.sample),
    (raw) =>
      task.kind === "train"
        ? trainSample(dataset, task.pipeline, raw, sampleRandom(task.seed, task.epoch, task.index))
        : task.kind === "draw"
        ? trainSample(dataset, task.pipeline, raw, drawRandom(task.draw, task.index))
        : testSample(dataset, task.pipeline, raw),
  ) as Effect.Effect<TaskResult<T>, FileError>;
};

/** A way to run tasks: on the main thread or in a pool of Workers. */
export type TaskRunner = <T extends SampleTask>(task: T) => Effect.Effect<TaskResult<T>, FileError>;
