/**
 * `deno task data <dataset or experiment> [--split S] [--skip-bad]`: read every file of the split(s),
 * validate them, print counts and per-class pixel frequencies, and fail listing each bad file.
 */
import { Console, Effect } from "effect";
import { join } from "node:path";
import { BadFiles, type DataError, InvalidConfig, type Problem, problemLine } from "./errors.ts";
import { listDirs } from "./listing.ts";
import { type ImageLevelSource, imageLevelSummary, readImageLevelLabels } from "./image_level.ts";
import { checkDatasetRoot } from "./open.ts";
import { type DatasetSpec, imageLevelSources } from "../dsl/dataset.ts";
import { loadDatasetSpec } from "./spec_file.ts";
import { type SplitReport, validateSplit } from "./validate.ts";

/** Arguments of the data command. */
export interface DataArgs {
  /** `camvid`, `coco133`, a `.json` spec or a `.ts` module (spec or experiment as default export). */
  readonly target: string;
  /** One split; default every split of the dataset. */
  readonly split?: string;
  /** Report bad files and go on instead of failing. */
  readonly skipBad?: boolean;
}

/** Parses `<target> [--split S] [--skip-bad]`. */
export const parseDataArgs = (argv: readonly string[]): Effect.Effect<DataArgs, InvalidConfig> => {
  const usage = "usage: deno task data <camvid|coco133|spec.json|experiment.ts> [--split S] [--skip-bad]";
  let target: string | undefined, split: string | undefined, skipBad = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--split" && i + 1 < argv.length) split = argv[++i];
    else if (a.startsWith("--split=")) split = a.slice("--split=".length);
    else if (a === "--skip-bad") skipBad = true;
    else if (!a.startsWith("--") && target === undefined) target = a;
    else return Effect.fail(new InvalidConfig({ file: "arguments", message: `unexpected "${a}"; ${usage}` }));
  }
  return target === undefined
    ? Effect.fail(new InvalidConfig({ file: "arguments", message: usage }))
    : Effect.succeed({ target, ...(split === undefined ? {} : { split }), skipBad });
};

/** Every split of a dataset: the directories under its images folder, or a procedural set's three. */
export const splitsOf = (spec: DatasetSpec): Effect.Effect<readonly string[]> =>
  spec._tag === "Procedural"
    ? Effect.succeed(["train", "val", "test"])
    : listDirs(join(spec.root, spec.imageDir));

const pct = (x: number) => (100 * x).toFixed(2);
const pad = (s: string | number, n: number) => String(s).padStart(n);

/** The counts table and the per-class frequency table, as text. */
export const formatReports = (reports: readonly SplitReport[]): string => {
  if (reports.length === 0) return "";
  const first = reports[0];
  const k = first.classNames.length;
  const lines = [
    `${first.dataset}: ${k} classes, ignore index ${first.ignoreIndex}`,
    "",
    `${"split".padEnd(12)}${pad("images", 8)}${pad("bad", 6)}${pad("classes present", 17)}${
      pad("mean classes/image", 20)
    }${pad("ignored %", 11)}`,
    ...reports.map((r) =>
      `${r.split.padEnd(12)}${pad(r.images, 8)}${pad(r.problems.length, 6)}${
        pad(`${r.classesPresent}/${k}`, 17)
      }${pad(r.meanClassesPerImage.toFixed(2), 20)}${pad(pct(r.ignoredFraction), 11)}`
    ),
    "",
    "per-class pixel frequency (% of labeled pixels):",
  ];
  const width = Math.min(28, Math.max(5, ...first.classNames.map((n) => n.length)) + 2);
  // Large vocabularies: list the most frequent classes of the first split only.
  const order = first.classNames.map((_, c) => c);
  const shown = k <= 256
    ? order
    : order.sort((a, b) => first.pixelCounts[b] - first.pixelCounts[a]).slice(0, 50);
  lines.push(`${"class".padEnd(width)}${reports.map((r) => pad(r.split, 12)).join("")}`);
  for (const c of shown) {
    lines.push(
      `${first.classNames[c].slice(0, width - 1).padEnd(width)}${
        reports.map((r) => pad(pct(r.pixelFrequency[c]), 12)).join("")
      }`,
    );
  }
  if (shown.length < k) lines.push(`… ${k - shown.length} more classes`);
  return lines.join("\n");
};

/** The image-level source's report: images, labels per image, images per class. */
export const formatImageLevel = (
  source: ImageLevelSource,
  classNames: readonly string[],
  ratio: number,
  semantics: "complete" | "partial" = "complete",
): string => {
  const s = imageLevelSummary(source);
  const width = Math.min(28, Math.max(5, ...classNames.map((n) => n.length)) + 2);
  const order = classNames.map((_, c) => c);
  const shown = classNames.length <= 256
    ? order
    : order.sort((a, b) => s.imagesPerClass[b] - s.imagesPerClass[a]).slice(0, 50);
  return [
    `image-level source ${source.file}: ${s.images} images, ${
      s.labelsPerImage.toFixed(2)
    } labels per image, ${
      s.imagesPerClass.filter((n) => n > 0).length
    }/${classNames.length} classes tagged; ${pct(ratio)} % of each training batch${
      semantics === "partial" ? "; partial labels (unlisted classes unknown)" : ""
    }`,
    "images per class:",
    ...shown.map((c) => `${classNames[c].slice(0, width - 1).padEnd(width)}${pad(s.imagesPerClass[c], 8)}`),
    ...(shown.length < classNames.length ? [`… ${classNames.length - shown.length} more classes`] : []),
  ].join("\n");
};

/**
 * The data command: validates the named split (or all splits), prints the tables, and on bad files fails
 * with `BadFiles` holding one problem per bad file (the CLI prints one line each and exits non-zero).
 */
export const dataCommand = (args: DataArgs): Effect.Effect<readonly SplitReport[], DataError> =>
  Effect.gen(function* () {
    const { spec, file, path, imageLevel } = yield* loadDatasetSpec(args.target);
    yield* checkDatasetRoot(spec, file, path);
    const splits = args.split === undefined ? yield* splitsOf(spec) : [args.split];
    if (splits.length === 0) {
      return yield* Effect.fail(new InvalidConfig({ file, message: "the dataset has no splits" }));
    }
    const reports: SplitReport[] = [];
    const problems: Problem[] = [];
    for (const split of splits) {
      const report = yield* validateSplit(spec, split, { skipBad: true, specFile: file, specPath: path });
      reports.push(report);
      problems.push(...report.problems);
    }
    yield* Console.log(formatReports(reports));
    for (const il of reports.length > 0 ? imageLevelSources(imageLevel) : []) {
      // Bad tags fail here, one problem each, like bad files.
      const source = yield* readImageLevelLabels(il.labels, reports[0].classNames.length);
      yield* Console.log(
        `\n${formatImageLevel(source, reports[0].classNames, il.ratio, il.semantics ?? "complete")}`,
      );
    }
    if (problems.length > 0) {
      if (args.skipBad) {
        yield* Console.log(`\nskipped ${problems.length} bad file${problems.length > 1 ? "s" : ""}:`);
        for (const p of problems) yield* Console.log(problemLine(p));
      } else {
        // The problems travel in the error; the CLI prints each as one line (printing them here too
        // showed every line twice).
        return yield* Effect.fail(
          new BadFiles({
            file,
            message: `${problems.length} bad file${problems.length > 1 ? "s" : ""} in ${splits.join(", ")}`,
            problems,
          }),
        );
      }
    }
    return reports;
  });
