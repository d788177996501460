/**
 * The example predictions an evaluation writes for the report: which images (spread evenly over the
 * evaluated images, the phase seeded, rather than the first N, which on a video split such as CamVid are
 * consecutive, nearly identical frames), and per example its image, ground truth, prediction (and
 * overlay) PNGs plus `<id>-classes.json`: the example's place in the split and the classes present in the
 * ground truth or the prediction with their colours, from which the report draws a legend.
 */
import { Effect } from "effect";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { random } from "../core/random.ts";
import type { TestBatch } from "../data/batch.ts";
import type { ClassTable } from "../data/classes.ts";
import type { DataError } from "../data/errors.ts";
import { openDataset } from "../data/open.ts";
import type { Experiment } from "../dsl/experiment.ts";
import { colorizeMask, overlay, writePng } from "./colorize.ts";
import { ImageFileError } from "./png.ts";
import type { Prediction } from "./predictor.ts";

/** The random stream that places the examples: `random(seed, EXAMPLE_PICKS)`. */
export const EXAMPLE_PICKS = 0x45584d50; // "EXMP"

/**
 * Positions (0-based, ascending) of `count` examples among `total` images: one per stretch of
 * `total / count` images, at the same seeded offset within each stretch. Every image at most once.
 */
export const exampleIndices = (total: number, count: number, seed: number): number[] => {
  const k = Math.max(0, Math.min(count, total));
  if (k === 0) return [];
  const gap = total / k;
  const offset = random(seed, EXAMPLE_PICKS).uniform() * gap;
  return Array.from({ length: k }, (_, i) => Math.min(total - 1, Math.floor(offset + i * gap)));
};

/**
 * The positions in the evaluated stream (the split, or its first `limit` images) that get examples, and
 * how many images that stream holds.
 */
export const examplePicks = (
  e: Experiment,
  split: string | undefined,
  limit: number | undefined,
  count: number,
): Effect.Effect<{ readonly indices: ReadonlySet<number>; readonly total: number }, DataError> =>
  count <= 0 ? Effect.succeed({ indices: new Set<number>(), total: 0 }) : Effect.map(
    openDataset(e.data.dataset, split ?? e.data.dataset.testSplit),
    (d) => {
      const total = Math.min(d.samples.length, limit ?? Infinity);
      return { indices: new Set(exampleIndices(total, count, e.train.seed)), total };
    },
  );

/** Undoes the test pipeline's normalization: [3, h, w] float → RGB bytes HWC. */
const denormalize = (
  x: Float32Array,
  h: number,
  w: number,
  mean: readonly number[],
  std: readonly number[],
) => {
  const rgb = new Uint8Array(h * w * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < h * w; i++) {
      rgb[i * 3 + c] = Math.max(0, Math.min(255, Math.round(x[c * h * w + i] * std[c] + mean[c])));
    }
  }
  return rgb;
};

/** One class of an example's legend: pixels of it in the ground truth and in the prediction. */
export interface ExampleClass {
  readonly class: number;
  readonly name: string;
  readonly color: readonly [number, number, number];
  readonly labelPixels: number;
  readonly predPixels: number;
}

/** The classes in the ground truth or the prediction, most ground-truth pixels first, then predicted. */
export const exampleClasses = (
  labels: Int32Array,
  predicted: Int32Array | Uint8Array,
  classes: ClassTable,
): ExampleClass[] => {
  const k = classes.names.length;
  const inLabel = new Float64Array(k), inPred = new Float64Array(k);
  for (const l of labels) if (l >= 0 && l < k && l !== classes.ignoreIndex) inLabel[l]++;
  for (const p of predicted) if (p >= 0 && p < k) inPred[p]++;
  return [...inLabel.keys()].filter((c) => inLabel[c] > 0 || inPred[c] > 0)
    .sort((a, b) => inLabel[b] - inLabel[a] || inPred[b] - inPred[a] || a - b)
    .map((c) => ({
      class: c,
      name: classes.names[c],
      color: [...classes.colors[c]] as [number, number, number],
      labelPixels: inLabel[c],
      predPixels: inPred[c],
    }));
};

/** Writes one example's PNGs and `<id>-classes.json`; `index` is its position among `of` images. */
export const writeExample = (
  dir: string,
  batch: TestBatch,
  p: Prediction,
  classes: ClassTable,
  e: Experiment,
  place: { readonly index: number; readonly of: number },
) =>
  Effect.gen(function* () {
    const { height, width, labels } = batch.original;
    const id = batch.ids[0];
    const colors = classes.colors;
    const predRgb = colorizeMask(p.classes, width, height, colors, classes.ignoreIndex);
    yield* writePng(
      join(dir, `${id}-label.png`),
      colorizeMask(labels, width, height, colors, classes.ignoreIndex),
      width,
      height,
    );
    yield* writePng(join(dir, `${id}-pred.png`), predRgb, width, height);
    const { mean, std } = e.data.test;
    const rgb = denormalize(batch.images, batch.height, batch.width, mean, std);
    yield* writePng(join(dir, `${id}-image.png`), rgb, batch.width, batch.height);
    if (batch.height === height && batch.width === width) {
      yield* writePng(join(dir, `${id}-overlay.png`), overlay(rgb, predRgb, 0.5), width, height);
    }
    const file = join(dir, `${id}-classes.json`);
    const legend = { ...place, classes: exampleClasses(labels, p.classes, classes) };
    yield* Effect.tryPromise({
      try: () => writeFile(file, JSON.stringify(legend) + "\n"),
      catch: (err) =>
        new ImageFileError({
          file,
          message: `${file}: cannot write (${err instanceof Error ? err.message : err})`,
        }),
    });
  });
