/**
 * Reader for mmsegmentation-style folder datasets (`images/<split>/*.jpg` + `annotations/<split>/*.png`
 * with a class table), e.g. CamVid.
 */
import { Effect } from "effect";
import { basename, isAbsolute, join } from "node:path";
import { type ClassTable, fromInline, readClassTable } from "./classes.ts";
import type { Dataset, LabeledImage, SampleRef } from "./dataset.ts";
import { readMask, readRgb } from "./decode.ts";
import { type DataError, type FileError, InvalidLabels, MissingMask, type Problem } from "./errors.ts";
import {
  applyLabelMapping,
  buildLabelMapping,
  INVALID,
  type LabelMapping,
  RAW_VALUES,
  type SourceLabels,
} from "./labels.ts";
import { listFiles, listSplitImages } from "./listing.ts";
import type { CocoPanopticSpec, FolderSpec } from "../dsl/dataset.ts";

/**
 * How the raw values of a folder dataset's masks map to its classes.
 *
 * Without `reduceZeroLabel`, value v < K is class v; with it (ADE20K), 0 is ignore and v in 1..K is class
 * v-1. The ignore value is void in both cases; everything else is invalid.
 */
export const folderSourceLabels = (table: ClassTable, spec: FolderSpec): SourceLabels => {
  const k = table.names.length;
  const rawIgnore = spec.ignoreIndex ?? table.ignoreIndex;
  const rawToSource = new Int32Array(RAW_VALUES).fill(INVALID);
  const shift = spec.reduceZeroLabel ? 1 : 0;
  if (spec.reduceZeroLabel) rawToSource[0] = -1;
  for (let c = 0; c < k && c + shift < RAW_VALUES; c++) rawToSource[c + shift] = c;
  if (rawIgnore >= 0 && rawIgnore < RAW_VALUES) rawToSource[rawIgnore] = -1;
  const valid = spec.reduceZeroLabel
    ? `1..${k} are classes, 0 and ${rawIgnore} are ignore`
    : `0..${k - 1} are classes, ${rawIgnore} is ignore`;
  return {
    names: table.names,
    colors: table.colors,
    ignoreIndex: table.ignoreIndex,
    rawToSource,
    invalidHint: `outside the class table (${valid})`,
  };
};

/** The class table a folder spec names: a file (relative to `root`) or inline data. */
const sourceTable = (spec: FolderSpec, specFile: string) =>
  typeof spec.classes === "string"
    ? readClassTable(isAbsolute(spec.classes) ? spec.classes : join(spec.root, spec.classes))
    : fromInline(spec.classes, specFile);

/** Opens one split of a folder dataset: reads its class table and pairs every image with its mask. */
export const openFolder = (
  spec: FolderSpec,
  split: string,
  specFile: string,
): Effect.Effect<Dataset, DataError> =>
  Effect.gen(function* () {
    const table = yield* sourceTable(spec, specFile);
    const mapping = yield* buildLabelMapping(folderSourceLabels(table, spec), spec, specFile);
    const imageDir = join(spec.root, spec.imageDir);
    const maskDir = join(spec.root, spec.annotationDir, split);
    const images = yield* listSplitImages(imageDir, split, spec.imageSuffixes);
    const maskNames = new Set(yield* listFiles(maskDir) ?? []);

    const samples: SampleRef[] = [];
    const problems: Problem[] = [];
    const stems = new Set<string>();
    for (const { stem, name } of images) {
      const image = join(imageDir, split, name);
      const mask = join(maskDir, stem + spec.maskSuffix);
      if (stems.has(stem)) problems.push({ file: image, message: `a second image with stem "${stem}"` });
      else if (!maskNames.has(stem + spec.maskSuffix)) {
        problems.push(new MissingMask({ file: image, message: `no mask ${mask}` }));
      } else samples.push({ id: stem, image, mask });
      stems.add(stem);
    }
    for (const m of maskNames) {
      if (m.endsWith(spec.maskSuffix) && !stems.has(m.slice(0, m.length - spec.maskSuffix.length))) {
        problems.push({ file: join(maskDir, m), message: "mask without an image" });
      }
    }
    return pairedDataset(spec, split, images.length, mapping, samples, problems);
  });

/** A dataset of image/mask pairs, as both the folder and the COCO loaders list them. */
export const pairedDataset = (
  spec: FolderSpec | CocoPanopticSpec,
  split: string,
  imageCount: number,
  mapping: LabelMapping,
  samples: readonly SampleRef[],
  problems: readonly Problem[],
): Dataset => ({
  spec,
  name: spec.name ?? basename(spec.root),
  split,
  imageCount,
  classes: mapping.classes,
  mapping,
  samples,
  // Tagged errors carry more than a problem's two fields; a Dataset lists plain problems.
  problems: problems.map(({ file, message }) => ({ file, message })),
  read: (sample) => readPair(sample, mapping),
});

/** Decodes an image and its mask, checks they match, and maps the mask to training ids. */
export const readPair = (sample: SampleRef, mapping: LabelMapping): Effect.Effect<LabeledImage, FileError> =>
  Effect.gen(function* () {
    const [image, mask] = yield* Effect.all([readRgb(sample.image), readMask(sample.mask)], {
      concurrency: 2,
    });
    if (image.width !== mask.width || image.height !== mask.height) {
      return yield* Effect.fail(
        new InvalidLabels({
          file: sample.mask,
          message: `mask is ${mask.width}x${mask.height} but its image ${
            basename(sample.image)
          } is ${image.width}x${image.height}`,
        }),
      );
    }
    const labels = yield* applyLabelMapping(mask.data, mapping, sample.mask);
    return { id: sample.id, width: image.width, height: image.height, image: image.data, labels };
  });
