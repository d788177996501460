/**
 * Loaders: Effect streams of batches for training (shuffled, augmented, endless) and testing (in order,
 * one image at a time).
 *
 * Shape of a training loader: the lazy training order (`trainingSlots`) → sample tasks run with bounded
 * concurrency, in order (`Stream.mapEffect`) → grouped into batches → a bounded prefetch buffer. Memory is
 * bounded by `concurrency` samples in flight plus `prefetch` ready batches, whatever the dataset size.
 * Determinism: the epoch order comes from `random(seed, SHUFFLE, epoch)` and each sample's augmentation
 * from `random(seed, AUGMENT, epoch, index)`, so the same seed gives byte-identical batches however the
 * work is scheduled, and starting at (epoch, index) gives exactly the batches a full run has from there.
 */
import { Effect, Stream } from "effect";
import { type Batch, collate, type TestBatch, testBatch } from "./batch.ts";
import type { Dataset } from "./dataset.ts";
import {
  BadFiles,
  type DataError,
  EmptySplit,
  type FileError,
  InvalidConfig,
  problemLine,
} from "./errors.ts";
import { defaultSplit, openDataset } from "./open.ts";
import { epochLength, type Slot, trainingSlots } from "./order.ts";
import type { ProcessedSample } from "./pipeline.ts";
import { type DatasetSource, runTask, type TaskRunner } from "./sample_task.ts";
import type { DatasetSpec, TestPipeline, TrainPipeline } from "../dsl/dataset.ts";
import { workerPool } from "./worker_pool.ts";

/** Options shared by both loaders. */
export interface LoaderOptions {
  /** Split to read; default the spec's `trainSplit` / `testSplit`. */
  readonly split?: string;
  /**
   * Samples in flight at once (default: two batches for training, 4 for testing). With Workers this must
   * cover at least a batch, or the Workers go idle while a blocking training step holds the main thread.
   */
  readonly concurrency?: number;
  /** Batches kept ready ahead of the consumer (default 2; 0 = none). */
  readonly prefetch?: number;
  /**
   * Worker threads that decode and augment; 0 = on the main thread. Default `defaultWorkers()`: a
   * synchronous `session.run` blocks the main thread, and only Workers keep the JavaScript half of the
   * pipeline going meanwhile (measured in BENCHMARKS.md, "Data pipeline").
   */
  readonly workers?: number;
  /** Skip bad files (each logged as a warning) instead of failing on the first one. */
  readonly skipBad?: boolean;
  /** Where the spec came from, for error messages about it. */
  readonly specFile?: string;
}

/** Options of the training loader. */
export interface TrainLoaderOptions extends LoaderOptions {
  readonly batchSize: number;
  readonly seed: number;
  /** Where to start: a batch boundary of the training order (default epoch 0, index 0). */
  readonly start?: { readonly epoch: number; readonly index: number };
  /** Drop each epoch's last, incomplete batch (default true). */
  readonly dropLast?: boolean;
  /** Batches carry each sample's panoptic segment ids and segments (COCO panoptic datasets). */
  readonly panoptic?: boolean;
  /**
   * Data-parallel training: `batchSize` is the global batch, and this rank's batches hold only its shard
   * of each, the samples at offsets [rank·B, (rank+1)·B) with B = batchSize / ranks (whole batches only:
   * needs `dropLast`). The other samples are not read. Positions stay the global batch's.
   */
  readonly shard?: Shard;
}

/** One rank's part of every global batch (see `TrainLoaderOptions.shard`). */
export interface Shard {
  readonly rank: number;
  readonly ranks: number;
}

/** Whether the sample at `offset` in a global batch of `batchSize` belongs to the shard (or there is none). */
export const inShard = (shard: Shard | undefined, offset: number, batchSize: number): boolean =>
  !shard || Math.floor(offset / (batchSize / shard.ranks)) === shard.rank;

/** Checks a shard against the global batch size: a valid rank, an equal part for every rank, dropLast. */
export const checkShard = (
  shard: Shard | undefined,
  batchSize: number,
  dropLast: boolean,
): Effect.Effect<void, InvalidConfig> => {
  if (!shard) return Effect.void;
  const bad = (message: string) => Effect.fail(new InvalidConfig({ file: OPTIONS, message }));
  if (!Number.isInteger(shard.ranks) || shard.ranks < 1 || !Number.isInteger(shard.rank)) {
    return bad(
      `shard: ranks must be a positive integer and rank an integer, got ${shard.rank} of ${shard.ranks}`,
    );
  }
  if (shard.rank < 0 || shard.rank >= shard.ranks) {
    return bad(`shard: rank ${shard.rank} is not below ${shard.ranks}`);
  }
  if (batchSize % shard.ranks !== 0) {
    return bad(`shard: batchSize ${batchSize} is not divisible by ${shard.ranks} ranks`);
  }
  return dropLast ? Effect.void : bad("shard: needs dropLast (every global batch whole)");
};

/** Options of the test loader. */
export interface TestLoaderOptions extends LoaderOptions {
  /** Index of the first image to yield (default 0), for resuming an evaluation. */
  readonly start?: number;
}

const OPTIONS = "loader options";

/** One Worker per core left over by the main thread, at least 1 and at most 4. */
export const defaultWorkers = (): number =>
  Math.max(1, Math.min(4, (navigator.hardwareConcurrency ?? 2) - 1));

export const checkInt = (value: number, name: string, min: number): Effect.Effect<void, InvalidConfig> =>
  Number.isInteger(value) && value >= min ? Effect.void : Effect.fail(
    new InvalidConfig({ file: OPTIONS, message: `${name} must be an integer >= ${min}, got ${value}` }),
  );

/**
 * Opens the split and applies the bad-input policy to its listing: problems fail the loader with one line
 * each unless `skipBad`, and a split with no usable sample is `EmptySplit`.
 */
export const openForLoading = (
  spec: DatasetSpec,
  split: string,
  options: LoaderOptions,
): Effect.Effect<Dataset, DataError> =>
  Effect.gen(function* () {
    const dataset = yield* openDataset(spec, split, options.specFile);
    if (dataset.problems.length > 0) {
      if (!options.skipBad) {
        return yield* Effect.fail(
          new BadFiles({
            file: `${dataset.name}/${split}`,
            message: `${dataset.problems.length} bad files in ${dataset.name}/${split}:\n${
              dataset.problems.map(problemLine).join("\n")
            }`,
            problems: dataset.problems,
          }),
        );
      }
      for (const p of dataset.problems) yield* Effect.logWarning(`skipping ${problemLine(p)}`);
    }
    if (dataset.samples.length === 0) {
      return yield* Effect.fail(
        new EmptySplit({
          file: `${dataset.name}/${split}`,
          message: `no usable samples in ${dataset.name}/${split}`,
        }),
      );
    }
    return dataset;
  });

/** Runs tasks on the main thread or, with `workers > 0`, in a Worker pool tied to the stream's scope. */
export const taskRunner = (dataset: Dataset, workers: number) =>
  workers > 0 ? workerPool(workers) : Effect.succeed(((task) => runTask(dataset, task)) as TaskRunner);

/** With `skipBad`, a bad sample becomes `null` (and a warning); otherwise its error fails the stream. */
export const tolerate = <A>(
  effect: Effect.Effect<A, FileError>,
  skipBad: boolean,
): Effect.Effect<A | null, FileError> =>
  skipBad
    ? Effect.catch(effect, (e) => Effect.as(Effect.logWarning(`skipping ${problemLine(e)}`), null))
    : effect;

/**
 * An endless stream of training batches of `spec`'s train split through `pipeline`.
 *
 * Epoch e visits the samples in the order `epochOrder(n, seed, e)`; batches never span epochs. Fails with
 * `InvalidConfig` for bad options (a start that is not a batch boundary, a batch larger than the split with
 * `dropLast`), `BadFiles` for listing problems, and the first bad file's error — unless `skipBad`, in which
 * case bad samples are left out of their batch (which is then smaller) and logged.
 */
export const trainLoader = (
  spec: DatasetSpec,
  pipeline: TrainPipeline,
  options: TrainLoaderOptions,
): Stream.Stream<Batch, DataError> =>
  Stream.unwrap(Effect.gen(function* () {
    const { batchSize, seed, prefetch = 2, workers = defaultWorkers(), dropLast = true } = options;
    const concurrency = options.concurrency ?? 2 * batchSize;
    const start = options.start ?? { epoch: 0, index: 0 };
    yield* checkInt(batchSize, "batchSize", 1);
    yield* checkInt(seed, "seed", 0);
    yield* checkInt(concurrency, "concurrency", 1);
    yield* checkInt(prefetch, "prefetch", 0);
    yield* checkInt(workers, "workers", 0);
    yield* checkInt(start.epoch, "start.epoch", 0);
    yield* checkInt(start.index, "start.index", 0);
    yield* checkShard(options.shard, batchSize, dropLast);
    const shard = options.shard;
    const split = options.split ?? defaultSplit(spec, "train");
    const dataset = yield* openForLoading(spec, split, options);
    const n = dataset.samples.length;
    const perEpoch = epochLength(n, batchSize, dropLast);
    if (perEpoch === 0) {
      return yield* Effect.fail(
        new InvalidConfig({
          file: OPTIONS,
          message: `batchSize ${batchSize} exceeds the ${n} samples of ${dataset.name}/${split} (dropLast)`,
        }),
      );
    }
    if (start.index % batchSize !== 0 || start.index >= perEpoch) {
      return yield* Effect.fail(
        new InvalidConfig({
          file: OPTIONS,
          message:
            `start.index ${start.index} is not a batch start (multiples of ${batchSize} below ${perEpoch})`,
        }),
      );
    }
    const run = yield* taskRunner(dataset, workers);
    const source: DatasetSource = { spec, split, specFile: options.specFile ?? "<dataset spec>" };
    const k = dataset.classes.names.length;
    const skipBad = options.skipBad ?? false;

    const slots = (function* () {
      for (const slot of trainingSlots(n, batchSize, dropLast, seed, start)) {
        if (inShard(shard, slot.index - slot.batch.index, slot.batchSize)) yield slot;
      }
    })();
    const samples = Stream.fromIterable(slots, { chunkSize: 1 })
      .pipe(
        Stream.mapEffect((slot) =>
          Effect.map(
            tolerate(
              run({
                kind: "train",
                source,
                pipeline,
                sample: dataset.samples[slot.sample],
                seed,
                epoch: slot.epoch,
                index: slot.index,
                ...(options.panoptic ? { panoptic: true } : {}),
              }),
              skipBad,
            ),
            (sample) => ({ slot, sample }),
          ), { concurrency }),
      );
    const batches = samples.pipe(
      Stream.mapAccum(
        (): (ProcessedSample | null)[] => [],
        (acc, { slot, sample }: { slot: Slot; sample: ProcessedSample | null }) => {
          const next = [...acc, sample];
          if (next.length < slot.batchSize / (shard?.ranks ?? 1)) return [next, []];
          const good = next.filter((s): s is ProcessedSample => s !== null);
          return [[], good.length === 0 ? [] : [collate(good, slot.batch, k)]];
        },
      ),
    );
    return prefetch > 0 ? batches.pipe(Stream.buffer({ capacity: prefetch })) : batches;
  }));

/**
 * The test split in order, one image per batch, at its original size or resized by `pipeline.resize`, with
 * the original label map alongside; positions are (0, i). Ends after the last image.
 */
export const testLoader = (
  spec: DatasetSpec,
  pipeline: TestPipeline,
  options: TestLoaderOptions = {},
): Stream.Stream<TestBatch, DataError> =>
  Stream.unwrap(Effect.gen(function* () {
    const { concurrency = 4, prefetch = 2, workers = defaultWorkers(), start = 0 } = options;
    yield* checkInt(concurrency, "concurrency", 1);
    yield* checkInt(prefetch, "prefetch", 0);
    yield* checkInt(workers, "workers", 0);
    yield* checkInt(start, "start", 0);
    const split = options.split ?? defaultSplit(spec, "test");
    const dataset = yield* openForLoading(spec, split, options);
    const run = yield* taskRunner(dataset, workers);
    const source: DatasetSource = { spec, split, specFile: options.specFile ?? "<dataset spec>" };
    const skipBad = options.skipBad ?? false;
    const indices = Array.from({ length: Math.max(dataset.samples.length - start, 0) }, (_, i) => start + i);
    const batches = Stream.fromIterable(indices, { chunkSize: 1 }).pipe(
      Stream.mapEffect((i) =>
        Effect.map(
          tolerate(run({ kind: "test", source, pipeline, sample: dataset.samples[i] }), skipBad),
          (sample) => sample === null ? [] : [testBatch(sample, i)],
        ), { concurrency }),
      Stream.flattenIterable,
    );
    return prefetch > 0 ? batches.pipe(Stream.buffer({ capacity: prefetch })) : batches;
  }));
