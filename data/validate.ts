/**
 * Validating a split: read every file, check it, and gather the statistics `deno task data` prints.
 */
import { Effect } from "effect";
import type { CocoDataset } from "./coco.ts";
import type { Dataset } from "./dataset.ts";
import { BadFiles, type DataError, type Problem, problemLine } from "./errors.ts";
import { openDataset } from "./open.ts";
import type { DatasetSpec } from "../dsl/dataset.ts";

/** What a split holds. */
export interface SplitReport {
  readonly dataset: string;
  readonly split: string;
  readonly classNames: readonly string[];
  readonly ignoreIndex: number;
  /** Images listed (good and bad). */
  readonly images: number;
  /** Images that read and checked cleanly; statistics cover these. */
  readonly valid: number;
  /** Problems found (with `skipBad`; without it any problem fails validation). */
  readonly problems: readonly Problem[];
  /** Classes with at least one pixel in the split. */
  readonly classesPresent: number;
  /** Mean number of classes present per image. */
  readonly meanClassesPerImage: number;
  /** Labeled pixels per class. */
  readonly pixelCounts: readonly number[];
  /** Per class: its share of all labeled (non-ignore) pixels. */
  readonly pixelFrequency: readonly number[];
  /** Share of all pixels that are ignore. */
  readonly ignoredFraction: number;
}

/** Options of `validateSplit`. */
export interface ValidateOptions {
  /** Report bad files and go on, instead of failing with all of them. */
  readonly skipBad?: boolean;
  /** Files read at once (default 4). */
  readonly concurrency?: number;
  /** Check only the first `limit` samples (default all). */
  readonly limit?: number;
  readonly specFile?: string;
  /** Where the dataset spec sits in `specFile` (see `checkDatasetRoot`). */
  readonly specPath?: string;
}

interface Tally {
  readonly present: number;
  readonly counts: Float64Array;
  readonly ignored: number;
  readonly pixels: number;
}

/** Reads and checks one sample (for COCO also its panoptic PNG against the JSON) and counts its pixels. */
const checkSample = (dataset: Dataset, index: number): Effect.Effect<Tally, DataError> =>
  Effect.gen(function* () {
    const sample = dataset.samples[index];
    const image = yield* dataset.read(sample);
    if ("readPanoptic" in dataset) yield* (dataset as CocoDataset).readPanoptic(sample);
    const k = dataset.classes.names.length;
    const counts = new Float64Array(k);
    let ignored = 0;
    for (const v of image.labels) {
      if (v >= 0 && v < k) counts[v]++;
      else ignored++;
    }
    return { present: counts.filter((c) => c > 0).length, counts, ignored, pixels: image.labels.length };
  });

/**
 * Reads every file of `split`, checks it, and returns counts and per-class pixel frequencies.
 *
 * Fails with `BadFiles` listing one problem per bad file (listing problems included) unless `skipBad`,
 * in which case the report holds the problems and statistics cover the good files. Config errors and an
 * empty split fail in either case.
 */
export const validateSplit = (
  spec: DatasetSpec,
  split: string,
  options: ValidateOptions = {},
): Effect.Effect<SplitReport, DataError> =>
  Effect.gen(function* () {
    const dataset = yield* openDataset(spec, split, options.specFile, options.specPath);
    const n = Math.min(dataset.samples.length, options.limit ?? Infinity);
    const results = yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => i),
      (i) => Effect.result(checkSample(dataset, i)),
      { concurrency: options.concurrency ?? 4 },
    );
    const problems: Problem[] = [...dataset.problems];
    const k = dataset.classes.names.length;
    const counts = new Float64Array(k);
    let valid = 0, presentSum = 0, ignored = 0, pixels = 0;
    for (const r of results) {
      if (r._tag === "Failure") {
        problems.push({ file: r.failure.file, message: r.failure.message });
        continue;
      }
      valid++;
      presentSum += r.success.present;
      ignored += r.success.ignored;
      pixels += r.success.pixels;
      for (let c = 0; c < k; c++) counts[c] += r.success.counts[c];
    }
    if (problems.length > 0 && !options.skipBad) {
      return yield* Effect.fail(
        new BadFiles({
          file: `${dataset.name}/${split}`,
          message: `${problems.length} bad file${
            problems.length > 1 ? "s" : ""
          } in ${dataset.name}/${split}:\n${problems.map(problemLine).join("\n")}`,
          problems,
        }),
      );
    }
    const labeled = pixels - ignored;
    return {
      dataset: dataset.name,
      split,
      classNames: dataset.classes.names,
      ignoreIndex: dataset.classes.ignoreIndex,
      images: options.limit === undefined ? dataset.imageCount : n,
      valid,
      problems,
      classesPresent: counts.filter((c) => c > 0).length,
      meanClassesPerImage: valid === 0 ? 0 : presentSum / valid,
      pixelCounts: [...counts],
      pixelFrequency: [...counts].map((c) => (labeled === 0 ? 0 : c / labeled)),
      ignoredFraction: pixels === 0 ? 0 : ignored / pixels,
    };
  });
