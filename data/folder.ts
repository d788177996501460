/**
 * Reader for mmsegmentation-style folder datasets (`images/<split>/*.jpg` + `annotations/<split>/*.png`
 * with a class table), e.g. CamVid.
 */
import { Effect } from "effect";
import { basename, isAbsolute, join } from "node:path";
import { type ClassTable, fromInline, readClassTable } from "./classes.ts";
import type { Dataset, LabeledImage, SampleRef } from "./dataset.ts";
import { decodeBoth, type DecodeLimits, readMask, readRgb } from "./decode.ts";
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
 * Without `reduceZeroLabel`, value v < K is class v and the ignore value is void. With it (ADE20K), the
 * order is mmsegmentation's `reduce_zero_label`: raw 1..K are classes 0..K-1, then raw 0 and raw 255 are
 * void (mmseg maps 255 → 254 → 255), and so is the ignore value, but only where it is not a class's raw
 * value: an ignore index of K (the natural choice for training ids 0..K-1) names class K-1's raw value,
 * and letting it win would silently drop that class. Everything else is invalid.
 */
export const folderSourceLabels = (table: ClassTable, spec: FolderSpec): SourceLabels => {
  const k = table.names.length;
  const rawIgnore = spec.ignoreIndex ?? table.ignoreIndex;
  const rawToSource = new Int32Array(RAW_VALUES).fill(INVALID);
  const shift = spec.reduceZeroLabel ? 1 : 0;
  const isClassValue = (v: number) => v >= shift && v < k + shift;
  const voids = spec.reduceZeroLabel ? [0, 255, rawIgnore] : [rawIgnore];
  const voidValues = [...new Set(voids)].filter((v) => v >= 0 && v < RAW_VALUES && !isClassValue(v))
    .sort((a, b) => a - b);
  for (const v of voidValues) rawToSource[v] = -1;
  for (let c = 0; c < k && c + shift < RAW_VALUES; c++) rawToSource[c + shift] = c;
  const ignored = voidValues.length === 0
    ? "none is ignore"
    : voidValues.length === 1
    ? `${voidValues[0]} is ignore`
    : `${voidValues.slice(0, -1).join(", ")} and ${voidValues[voidValues.length - 1]} are ignore`;
  const valid = `${shift}..${k - 1 + shift} are classes, ${ignored}`;
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
    const { images, unfollowed } = yield* listSplitImages(imageDir, split, spec.imageSuffixes, spec.root);
    const masks = yield* listFiles(maskDir, spec.root);
    const maskNames = new Set(masks?.files ?? []);
    const maskLinks = masks?.unfollowed ?? new Map<string, string>();

    const samples: SampleRef[] = [];
    const problems: Problem[] = [...unfollowed];
    // The masks of images that are unfollowed links are not "without an image".
    const stems = new Set<string>(
      unfollowed.map((p) => basename(p.file)).map((name) => {
        const suffix = spec.imageSuffixes.find((s) => name.toLowerCase().endsWith(s.toLowerCase()))!;
        return name.slice(0, name.length - suffix.length);
      }),
    );
    for (const { stem, name } of images) {
      const image = join(imageDir, split, name);
      const mask = join(maskDir, stem + spec.maskSuffix);
      const maskLink = maskLinks.get(stem + spec.maskSuffix);
      if (stems.has(stem)) problems.push({ file: image, message: `a second image with stem "${stem}"` });
      else if (maskLink !== undefined) problems.push({ file: mask, message: maskLink });
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
    return pairedDataset(spec, split, images.length + unfollowed.length, mapping, samples, problems);
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
  read: (sample) => readPair(sample, mapping, { maxPixels: spec.maxPixels }),
});

/** Decodes an image and its mask, checks they match, and maps the mask to training ids. */
export const readPair = (
  sample: SampleRef,
  mapping: LabelMapping,
  limits: DecodeLimits = {},
): Effect.Effect<LabeledImage, FileError> =>
  Effect.gen(function* () {
    const [image, mask] = yield* decodeBoth(readRgb(sample.image, limits), readMask(sample.mask, limits));
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
