/**
 * The static shapes a graph is traced at, and where a model's come from: its experiment's training crop.
 * Every program that traces a model's graphs (training, evaluation, prediction, export) takes the sizes
 * from here rather than from `data.train.cropSize` itself.
 */
import type { AnyExperiment } from "../dsl/experiment.ts";

/** The static shapes a graph is traced at: every kind's graphs take them. */
export interface Shapes {
  readonly batch: number;
  readonly height: number;
  readonly width: number;
  /** The training crop [height, width]: the grid position embeddings are learned at. */
  readonly trainSize: readonly [number, number];
}

/** The training crop [height, width] of an experiment: its graphs' input size and position grid. */
export const trainSize = (e: AnyExperiment): readonly [number, number] => {
  const [height, width] = e.data.train.cropSize;
  return [height, width];
};

/** The shapes of the training plan: a batch of `train.batchSize` crops. */
export const trainShapes = (e: AnyExperiment): Shapes => inferenceShapes(e, e.train.batchSize);

/**
 * The shapes of an inference graph of `batch` images of `size` (default: the training crop, the size an
 * exported model has); the position grid is always the training crop's.
 */
export const inferenceShapes = (
  e: AnyExperiment,
  batch: number,
  size: readonly [number, number] = trainSize(e),
): Shapes => ({ batch, height: size[0], width: size[1], trainSize: trainSize(e) });
