/**
 * The training loader for image-level sources: every batch mixes pixel-labelled images of the dataset with
 * images of one or more image-level sources (tags, no masks) at the spec's ratios (LarvSeg's losses, ξ's
 * multi-label loss).
 *
 * Each kind has its own endless training order (a seeded shuffle per epoch, batches never spanning
 * epochs), cut into p pixel-labelled images and q_i images of source i per batch; batch s of the run is
 * the s-th group of every order. Source i's order is addressed by a seed derived from the run's
 * (`imageLevelSeed(seed, i)`), so the shuffles and augmentation streams are independent. A batch's
 * position is its pixel-labelled part's (epoch, index); it fixes the batch number s and with it every
 * source's position, so a resume from any batch boundary yields exactly the batches a run that never
 * stopped yields from there. Source 0's seed is the one the single-source loader used, so a one-source run
 * started before sources became a list keeps its batches.
 *
 * Besides `pixelLabelled`, a batch carries `imageLabelsKnown` [B, K]: 1 where the image's label for the
 * class is known — every class of a pixel-labelled image and of a `complete` source's image, only the
 * listed classes of a `partial` source's image (the others are unknown: ξ's multi-label loss leaves them
 * out). Pixel-labelled images whose dataset spec sets no `imageLabels` get an all-zero `imageLabels` row:
 * ξ's target for them comes from their masks (in the graph).
 */
import { Effect, Stream } from "effect";
import { random } from "../core/random.ts";
import {
  type DatasetSpec,
  type ImageLevelData,
  imageLevelShares,
  type ImageLevelSources,
  imageLevelSources,
  isPartial,
  type TrainPipeline,
} from "../dsl/dataset.ts";
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

/**
 * The seed of source `source`'s order and augmentation, derived from the run's seed (source 0: the seed
 * of the single-source loader, `random(seed, IMAGE_LEVEL)`; source i > 0: `random(seed, IMAGE_LEVEL, i)`).
 */
export const imageLevelSeed = (seed: number, source = 0): number =>
  (source === 0 ? random(seed, IMAGE_LEVEL) : random(seed, IMAGE_LEVEL, source)).int(2 ** 31 - 1);

/** The number of the batch at pixel-labelled position `p` (batches of `b` of `n` samples, dropLast). */
export const batchNumber = (p: Position, n: number, b: number): number =>
  p.epoch * Math.floor(n / b) + p.index / b;

/** The image-level position of batch number `s` (batches of `q` of `n` samples, dropLast). */
export const imageLevelPosition = (s: number, n: number, q: number): Position => {
  const perEpoch = Math.floor(n / q);
  return { epoch: Math.floor(s / perEpoch), index: (s % perEpoch) * q };
};

/**
 * A sample of either kind (`source` −1 for a pixel-labelled image, else the image-level source's index)
 * and its global batch's position.
 */
interface Mixed {
  readonly source: number;
  readonly slot: Slot;
  readonly task: SampleTask;
  /** The global batch's position (its pixel-labelled part's), whichever part of it a rank takes. */
  readonly position: Position;
}

/**
 * An endless stream of mixed training batches: `pixel` pixel-labelled images of `spec`'s train split,
 * then the images of each source in the listed order, per batch (`imageLevelShares(batchSize, sources)`),
 * with `pixelLabelled` [B], multi-hot `imageLabels` [B, K] and `imageLabelsKnown` [B, K] (module doc).
 * `options.batchSize` is the whole batch.
 */
export const mixedTrainLoader = (
  spec: DatasetSpec,
  pipeline: TrainPipeline,
  imageLevel: ImageLevelSources,
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
    const specs = imageLevelSources(imageLevel);
    const share = imageLevelShares(batchSize, specs);
    if (share.pixel < 1 || share.perSource.some((q) => q < 1)) {
      return yield* new InvalidConfig({
        file: options.specFile ?? "<dataset spec>",
        message: `data.imageLevel: a batch of ${batchSize} splits into ${share.pixel} pixel-labelled and ` +
          `${share.perSource.join(" + ")} image-level images; each part needs at least 1`,
      });
    }
    const split = options.split ?? defaultSplit(spec, "train");
    const dataset = yield* openForLoading(spec, split, options);
    const k = dataset.classes.names.length;
    const sources: ImageLevelSource[] = [];
    for (const s of specs) sources.push(yield* readImageLevelLabels(s.labels, k));
    const n = dataset.samples.length;
    const tooSmall = (what: string, count: number, b: number) =>
      new EmptySplit({ file: what, message: `${count} images cannot fill a batch part of ${b} (${what})` });
    if (epochLength(n, share.pixel, true) === 0) {
      return yield* tooSmall(`${dataset.name}/${split}`, n, share.pixel);
    }
    for (const [i, source] of sources.entries()) {
      if (epochLength(source.samples.length, share.perSource[i], true) === 0) {
        return yield* tooSmall(source.file, source.samples.length, share.perSource[i]);
      }
    }
    if (start.index % share.pixel !== 0) {
      return yield* new InvalidConfig({
        file: "loader options",
        message: `start.index ${start.index} is not a batch start (multiples of ${share.pixel})`,
      });
    }
    const run = yield* taskRunner(dataset, workers);
    const from: DatasetSource = { spec, split, specFile: options.specFile ?? "<dataset spec>" };
    const s0 = batchNumber(start, n, share.pixel);
    const orders = sources.map((source, i) => {
      const q = share.perSource[i], m = source.samples.length, ilSeed = imageLevelSeed(seed, i);
      return { source, q, ilSeed, slots: trainingSlots(m, q, true, ilSeed, imageLevelPosition(s0, m, q)) };
    });
    const skipBad = options.skipBad ?? false;

    function* global(): Generator<Omit<Mixed, "position">> {
      const pixels = trainingSlots(n, share.pixel, true, seed, start);
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
          yield { source: -1, slot, task };
        }
        for (const [j, o] of orders.entries()) {
          for (let i = 0; i < o.q; i++) {
            const slot = o.slots.next().value as Slot;
            const task: SampleTask = {
              kind: "imageLevel",
              source: from,
              pipeline,
              sample: o.source.samples[slot.sample],
              seed: o.ilSeed,
              epoch: slot.epoch,
              index: slot.index,
            };
            yield { source: j, slot, task };
          }
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

    /** A sample's `imageLabelsKnown` row: all ones, or only its listed classes for a partial source. */
    const known = (d: Done): Uint8Array =>
      d.source >= 0 && isPartial(specs[d.source]) ? d.sample!.imageLabels! : new Uint8Array(k).fill(1);

    type Done = {
      readonly source: number;
      readonly position: Position;
      readonly sample: ProcessedSample | null;
    };
    const perRank = batchSize / (shard?.ranks ?? 1);
    const samples = Stream.fromIterable(mixed(), { chunkSize: 1 }).pipe(
      Stream.mapEffect(
        ({ source, task, position }) =>
          Effect.map(
            tolerate(run(task), skipBad),
            (sample): Done => ({ source, position, sample: sample as ProcessedSample | null }),
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
          // A pixel-labelled image without image-level labels (no `imageLabels` in the dataset spec) gets
          // an empty row, so that every row of the batch has one.
          const rows = good.map((d) =>
            d.sample!.imageLabels ? d.sample! : { ...d.sample!, imageLabels: new Uint8Array(k) }
          );
          const batch = collate(rows, next[0].position, k);
          const pixelLabelled = Uint8Array.from(good, (d) => (d.source < 0 ? 1 : 0));
          const imageLabelsKnown = new Uint8Array(good.length * k);
          good.forEach((d, b) => imageLabelsKnown.set(known(d), b * k));
          return [[], [{ ...batch, pixelLabelled, imageLabelsKnown } satisfies Batch]];
        },
      ),
    );
    return prefetch > 0 ? batches.pipe(Stream.buffer({ capacity: prefetch })) : batches;
  }));

/** Reads the image-level sources an experiment names, against its dataset's `classes`. */
export const openImageLevel = (
  imageLevel: ImageLevelSources,
  classes: number,
): Effect.Effect<readonly ImageLevelSource[], DataError> =>
  Effect.forEach(
    imageLevelSources(imageLevel),
    (s: ImageLevelData) => readImageLevelLabels(s.labels, classes),
  );
