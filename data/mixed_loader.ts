/**
 * LarvSeg's training loader: every batch mixes pixel-labelled images of the dataset with images of an
 * image-level source (tags, no masks) at the spec's ratio.
 *
 * Each kind has its own endless training order (a seeded shuffle per epoch, batches never spanning
 * epochs), cut into p pixel-labelled and q image-level images per batch; batch s of the run is the s-th
 * group of both orders. The image-level order is addressed by a seed derived from the run's, so the two
 * shuffles and the two augmentation streams are independent. A batch's position is its pixel-labelled
 * part's (epoch, index); it fixes the batch number s and with it the image-level position, so a resume
 * from any batch boundary yields exactly the batches a run that never stopped yields from there.
 */
import { Effect, Stream } from "effect";
import { random } from "../core/random.ts";
import type { DatasetSpec, ImageLevelData, TrainPipeline } from "../dsl/dataset.ts";
import { imageLevelShare } from "../dsl/dataset.ts";
import { type Batch, collate, type Position } from "./batch.ts";
import { type DataError, EmptySplit, InvalidConfig } from "./errors.ts";
import { type ImageLevelSource, readImageLevelLabels } from "./image_level.ts";
import {
  checkInt,
  checkShard,
  defaultWorkers,
  inShard,
  openForLoading,
  taskRunner,
  tolerate,
  type TrainLoaderOptions,
} from "./loader.ts";
import { defaultSplit } from "./open.ts";
import { epochLength, type Slot, trainingSlots } from "./order.ts";
import type { ProcessedSample } from "./pipeline.ts";
import type { DatasetSource, SampleTask } from "./sample_task.ts";

/** Key of the image-level order's seed: `random(seed, IMAGE_LEVEL)`. */
export const IMAGE_LEVEL = 0x494c564c; // "ILVL"

/** The seed of the image-level order and augmentation, derived from the run's seed. */
export const imageLevelSeed = (seed: number): number => random(seed, IMAGE_LEVEL).int(2 ** 31 - 1);

/** The number of the batch at pixel-labelled position `p` (batches of `b` of `n` samples, dropLast). */
export const batchNumber = (p: Position, n: number, b: number): number =>
  p.epoch * Math.floor(n / b) + p.index / b;

/** The image-level position of batch number `s` (batches of `q` of `n` samples, dropLast). */
export const imageLevelPosition = (s: number, n: number, q: number): Position => {
  const perEpoch = Math.floor(n / q);
  return { epoch: Math.floor(s / perEpoch), index: (s % perEpoch) * q };
};

/** A sample of either kind, tagged for the batch's `pixelLabelled` row, and its global batch's position. */
interface Mixed {
  readonly pixel: boolean;
  readonly slot: Slot;
  readonly task: SampleTask;
  /** The global batch's position (its pixel-labelled part's), whichever part of it a rank takes. */
  readonly position: Position;
}

/**
 * An endless stream of mixed training batches: `pixel` pixel-labelled images of `spec`'s train split
 * then `imageLevel` images of the source, per batch (`imageLevelShare(batchSize, ratio)`), with
 * `pixelLabelled` [B] and multi-hot `imageLabels` [B, K] (the pixel-labelled images' from the dataset
 * spec's `imageLabels` option, which must be set). `options.batchSize` is the whole batch.
 */
export const mixedTrainLoader = (
  spec: DatasetSpec,
  pipeline: TrainPipeline,
  imageLevel: ImageLevelData,
  options: TrainLoaderOptions,
): Stream.Stream<Batch, DataError> =>
  Stream.unwrap(Effect.gen(function* () {
    const { batchSize, seed, prefetch = 2, workers = defaultWorkers() } = options;
    const concurrency = options.concurrency ?? 2 * batchSize;
    const start = options.start ?? { epoch: 0, index: 0 };
    yield* checkInt(batchSize, "batchSize", 2);
    yield* checkInt(seed, "seed", 0);
    yield* checkInt(concurrency, "concurrency", 1);
    yield* checkInt(prefetch, "prefetch", 0);
    yield* checkShard(options.shard, batchSize, true);
    const shard = options.shard;
    if (spec.imageLabels === undefined) {
      return yield* new InvalidConfig({
        file: options.specFile ?? "<dataset spec>",
        message:
          "data.dataset.imageLabels: mixing in image-level images needs the pixel-labelled images' too",
      });
    }
    const share = imageLevelShare(batchSize, imageLevel.ratio);
    const split = options.split ?? defaultSplit(spec, "train");
    const dataset = yield* openForLoading(spec, split, options);
    const k = dataset.classes.names.length;
    const source = yield* readImageLevelLabels(imageLevel.labels, k);
    const n = dataset.samples.length, m = source.samples.length;
    const tooSmall = (what: string, count: number, b: number) =>
      new EmptySplit({ file: what, message: `${count} images cannot fill a batch part of ${b} (${what})` });
    if (epochLength(n, share.pixel, true) === 0) {
      return yield* tooSmall(`${dataset.name}/${split}`, n, share.pixel);
    }
    if (epochLength(m, share.imageLevel, true) === 0) {
      return yield* tooSmall(source.file, m, share.imageLevel);
    }
    if (start.index % share.pixel !== 0) {
      return yield* new InvalidConfig({
        file: "loader options",
        message: `start.index ${start.index} is not a batch start (multiples of ${share.pixel})`,
      });
    }
    const run = yield* taskRunner(dataset, workers);
    const from: DatasetSource = { spec, split, specFile: options.specFile ?? "<dataset spec>" };
    const ilSeed = imageLevelSeed(seed);
    const ilStart = imageLevelPosition(batchNumber(start, n, share.pixel), m, share.imageLevel);
    const skipBad = options.skipBad ?? false;

    function* global(): Generator<Omit<Mixed, "position">> {
      const pixels = trainingSlots(n, share.pixel, true, seed, start);
      const images = trainingSlots(m, share.imageLevel, true, ilSeed, ilStart);
      for (;;) {
        for (let i = 0; i < share.pixel; i++) {
          const slot = pixels.next().value as Slot;
          const task: SampleTask = {
            kind: "train",
            source: from,
            pipeline,
            sample: dataset.samples[slot.sample],
            seed,
            epoch: slot.epoch,
            index: slot.index,
          };
          yield { pixel: true, slot, task };
        }
        for (let i = 0; i < share.imageLevel; i++) {
          const slot = images.next().value as Slot;
          const task: SampleTask = {
            kind: "imageLevel",
            source: from,
            pipeline,
            sample: source.samples[slot.sample],
            seed: ilSeed,
            epoch: slot.epoch,
            index: slot.index,
          };
          yield { pixel: false, slot, task };
        }
      }
    }

    // The global batches' samples, this rank's shard of each (all of them without a shard).
    function* mixed(): Generator<Mixed> {
      let offset = 0, position: Position = start;
      for (const item of global()) {
        if (offset === 0) position = item.slot.batch;
        if (inShard(shard, offset, batchSize)) yield { ...item, position };
        offset = (offset + 1) % batchSize;
      }
    }

    type Done = {
      readonly pixel: boolean;
      readonly position: Position;
      readonly sample: ProcessedSample | null;
    };
    const perRank = batchSize / (shard?.ranks ?? 1);
    const samples = Stream.fromIterable(mixed(), { chunkSize: 1 }).pipe(
      Stream.mapEffect(
        ({ pixel, task, position }) =>
          Effect.map(
            tolerate(run(task), skipBad),
            (sample): Done => ({ pixel, position, sample: sample as ProcessedSample | null }),
          ),
        { concurrency },
      ),
    );
    const batches = samples.pipe(
      Stream.mapAccum(
        (): Done[] => [],
        (acc, done: Done) => {
          const next = [...acc, done];
          if (next.length < perRank) return [next, []];
          const good = next.filter((d) => d.sample !== null);
          if (good.length === 0) return [[], []];
          const batch = collate(good.map((d) => d.sample!), next[0].position, k);
          const pixelLabelled = Uint8Array.from(good, (d) => (d.pixel ? 1 : 0));
          return [[], [{ ...batch, pixelLabelled } satisfies Batch]];
        },
      ),
    );
    return prefetch > 0 ? batches.pipe(Stream.buffer({ capacity: prefetch })) : batches;
  }));

/** Reads the image-level source an experiment names, against its dataset's `classes`. */
export const openImageLevel = (
  imageLevel: ImageLevelData,
  classes: number,
): Effect.Effect<ImageLevelSource, DataError> => readImageLevelLabels(imageLevel.labels, classes);
