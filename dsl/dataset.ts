/**
 * Dataset and pipeline specs: JSON-encodable descriptions of what to load and how to augment it.
 *
 * A spec is plain data checked by an Effect Schema, so it can live in a `.json` file or inside a later
 * experiment spec (`{ dataset, train: pipeline, test: pipeline, batchSize, ... }`). Decoding fills in the
 * defaults, so the decoded `Type` has every field; the `Encoded` (input) form leaves defaulted fields
 * optional. Paths are used as given, relative to the working directory (e.g. `"../shared/data/camvid"`),
 * except a Folder's classes file, which is resolved against its `root`.
 */
import { Effect, Result, Schema } from "effect";
import { decodeConfig, InvalidConfig } from "./decode.ts";

/** The largest class count kappa supports (ImageNet-21k's 21,841 classes). */
export const MAX_CLASSES = 21841;

const Channel = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 255 }));

/** Schema of an RGB triple of 0..255 integers. */
export const RgbSchema = Schema.Tuple([Channel, Channel, Channel]);

/** Schema of a class table written inline in a spec (`colors`, `ignoreIndex`, `isThing` optional). */
export const InlineClassTable = Schema.Struct({
  names: Schema.Array(Schema.String).check(Schema.isMinLength(1)),
  colors: Schema.optionalKey(Schema.Array(RgbSchema)),
  ignoreIndex: Schema.optionalKey(Schema.Int),
  isThing: Schema.optionalKey(Schema.Array(Schema.Boolean)),
});
export type InlineClassTable = typeof InlineClassTable.Type;

const withDefault = <S extends Schema.Top>(value: S["Encoded"]) => (schema: S) =>
  schema.pipe(Schema.withDecodingDefault(Effect.succeed(value)));

const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1));
const Probability = Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }));
const Triple = Schema.Tuple([Schema.Number, Schema.Number, Schema.Number]);

/**
 * Label conventions shared by the dataset kinds.
 *
 * - `ignoreIndex`: label value of ignored pixels in batches (default: the class table's, else 255).
 * - `classMap`: source class name → target name (merge/rename) or `null` (ignore those pixels).
 * - `subset`: keep only these (mapped) classes, in this order; every other class becomes ignore.
 * - `hidden`: classes whose masks are hidden (pixels → ignore) while image-level labels keep them
 *   (LarvSeg-style weak supervision).
 * - `imageLabels`: emit multi-hot image-level labels, derived from the whole image's mask or the crop.
 */
/**
 * The most pixels (width × height) an image or mask may have for the loaders to decode it; larger files
 * are refused from their header (data/decode.ts: 8192 × 8192 when absent). Optional without a default, so
 * specs without it keep their canonical JSON and hash.
 */
const MaxPixelsField = { maxPixels: Schema.optionalKey(PositiveInt) };

export const LabelFields = {
  ignoreIndex: Schema.optionalKey(Schema.Int),
  classMap: Schema.optionalKey(Schema.Record(Schema.String, Schema.NullOr(Schema.String))),
  subset: Schema.optionalKey(Schema.Array(Schema.String).check(Schema.isMinLength(1))),
  hidden: Schema.optionalKey(Schema.Array(Schema.String)),
  imageLabels: Schema.optionalKey(Schema.Literals(["image", "crop"])),
};

/**
 * An mmsegmentation-style folder dataset: `root/<imageDir>/<split>/<stem><imageSuffix>` with the mask at
 * `root/<annotationDir>/<split>/<stem><maskSuffix>`.
 *
 * Gotcha: `ignoreIndex` is also the void value inside the mask files; with `reduceZeroLabel` (ADE20K) mask
 * values 1..K become classes 0..K-1 and 0 and 255 are void too (mmsegmentation's order), and the ignore
 * value never overrides a class's raw value (an ignore index of K stays class K-1 in the files).
 */
export const FolderSpec = Schema.TaggedStruct("Folder", {
  name: Schema.optionalKey(Schema.String),
  root: Schema.String,
  imageDir: Schema.String.pipe(withDefault("images")),
  annotationDir: Schema.String.pipe(withDefault("annotations")),
  imageSuffixes: Schema.Array(Schema.String).check(Schema.isMinLength(1)).pipe(
    withDefault([".jpg", ".jpeg", ".png"]),
  ),
  maskSuffix: Schema.String.pipe(withDefault(".png")),
  /** A classes file (resolved against `root`) or an inline table. */
  classes: Schema.Union([Schema.String, InlineClassTable]),
  reduceZeroLabel: Schema.Boolean.pipe(withDefault(false)),
  trainSplit: Schema.String.pipe(withDefault("train")),
  testSplit: Schema.String.pipe(withDefault("val")),
  ...MaxPixelsField,
  ...LabelFields,
});
export type FolderSpec = typeof FolderSpec.Type;

/**
 * A COCO panoptic dataset: `images/<split>/*.jpg`, semantic masks of sparse category ids in
 * `semantic/<split>/*.png` (0 = unlabeled → ignore), and `panoptic/panoptic_<split>.json` with
 * `panoptic/<split>/*.png` (RGB-encoded segment ids). The JSON's category list defines training ids.
 */
export const CocoPanopticSpec = Schema.TaggedStruct("CocoPanoptic", {
  name: Schema.optionalKey(Schema.String),
  root: Schema.String,
  imageDir: Schema.String.pipe(withDefault("images")),
  semanticDir: Schema.String.pipe(withDefault("semantic")),
  panopticDir: Schema.String.pipe(withDefault("panoptic")),
  trainSplit: Schema.String.pipe(withDefault("train2017")),
  testSplit: Schema.String.pipe(withDefault("val2017")),
  ...MaxPixelsField,
  ...LabelFields,
});
export type CocoPanopticSpec = typeof CocoPanopticSpec.Type;

/**
 * A synthetic dataset of textured shapes, generated from `seed`: splits `train`, `val` and `test` of
 * `count` images each, `classesPerImage` classes per image at most (background included).
 *
 * For tests and timing only; it must never be used to report accuracy.
 */
export const ProceduralSpec = Schema.TaggedStruct("Procedural", {
  name: Schema.String.pipe(withDefault("procedural")),
  numClasses: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: MAX_CLASSES })),
  height: Schema.Int.check(Schema.isBetween({ minimum: 8, maximum: 8192 })),
  width: Schema.Int.check(Schema.isBetween({ minimum: 8, maximum: 8192 })),
  classesPerImage: PositiveInt.pipe(withDefault(3)),
  count: PositiveInt,
  seed: Schema.Int.pipe(withDefault(0)),
  trainSplit: Schema.String.pipe(withDefault("train")),
  testSplit: Schema.String.pipe(withDefault("val")),
  ...LabelFields,
});
export type ProceduralSpec = typeof ProceduralSpec.Type;

/** Any dataset spec, discriminated on `_tag`. */
export const DatasetSpec = Schema.Union([FolderSpec, CocoPanopticSpec, ProceduralSpec]).pipe(
  Schema.toTaggedUnion("_tag"),
);
export type DatasetSpec = typeof DatasetSpec.Type;
/** The JSON form of a dataset spec, with defaulted fields optional. */
export type DatasetSpecInput = typeof DatasetSpec.Encoded;

const datasetKinds = {
  Folder: FolderSpec,
  CocoPanoptic: CocoPanopticSpec,
  Procedural: ProceduralSpec,
} as const;

/**
 * Decodes a dataset spec from unknown JSON, failing with a one-line `InvalidConfig` naming `file`.
 *
 * Gotcha: the `_tag` is checked first and the matching member decoded alone, so a bad field is reported
 * by name instead of as "expected one of three shapes".
 */
export const decodeDatasetSpec = (
  value: unknown,
  file: string,
): Effect.Effect<DatasetSpec, InvalidConfig> => {
  const tag = typeof value === "object" && value !== null ? (value as { _tag?: unknown })._tag : undefined;
  if (tag !== "Folder" && tag !== "CocoPanoptic" && tag !== "Procedural") {
    return Effect.fail(
      new InvalidConfig({
        file,
        message: `unknown dataset kind ${
          JSON.stringify(tag)
        }; expected _tag "Folder", "CocoPanoptic" or "Procedural"`,
      }),
    );
  }
  return decodeConfig(datasetKinds[tag] as Schema.Decoder<DatasetSpec>, value, file).pipe(
    Effect.flatMap((spec) => checkLabelFields(spec, file)),
  );
};

const checkLabelFields = (spec: DatasetSpec, file: string): Effect.Effect<DatasetSpec, InvalidConfig> => {
  const dup = (names: readonly string[] | undefined) => names?.find((n, i) => names.indexOf(n) !== i);
  const d = dup(spec.subset) ?? dup(spec.hidden);
  return d === undefined
    ? Effect.succeed(spec)
    : Effect.fail(new InvalidConfig({ file, message: `class "${d}" is listed twice in subset/hidden` }));
};

const constructed = <A>(effect: Effect.Effect<A, InvalidConfig>): A => {
  const result = Effect.runSync(Effect.result(effect));
  if (Result.isSuccess(result)) return result.success;
  throw new Error(`${result.failure.file}: ${result.failure.message}`);
};

/** A Folder dataset spec with defaults filled in; throws on invalid input (use in code, not for user files). */
export const folder = (input: Omit<typeof FolderSpec.Encoded, "_tag">): FolderSpec =>
  constructed(decodeDatasetSpec({ _tag: "Folder", ...input }, "folder(...)")) as FolderSpec;

/** A COCO panoptic dataset spec with defaults filled in; throws on invalid input. */
export const cocoPanoptic = (input: Omit<typeof CocoPanopticSpec.Encoded, "_tag">): CocoPanopticSpec =>
  constructed(decodeDatasetSpec({ _tag: "CocoPanoptic", ...input }, "cocoPanoptic(...)")) as CocoPanopticSpec;

/** A procedural (synthetic) dataset spec with defaults filled in; throws on invalid input. */
export const procedural = (input: Omit<typeof ProceduralSpec.Encoded, "_tag">): ProceduralSpec =>
  constructed(decodeDatasetSpec({ _tag: "Procedural", ...input }, "procedural(...)")) as ProceduralSpec;

/**
 * An image-level data source: images with image-level labels only (no masks), read from a `labels.json`
 * (`{"images": "<folder relative to the file>", "labels": {"<file>": [class id, ...]}}`, ccp's
 * `image-level/` form), mixed into every training batch. An experiment's `data.imageLevel` is one source
 * or a list of them.
 *
 * `ratio` is the share of each batch that comes from this source: `round(batchSize · ratio)` image-level
 * images; the pixel-labelled images take the rest. The official LarvSeg code trains the two kinds 1:1
 * *across GPUs* (each GPU's batch holds one kind; the gradients are averaged); a single process gets the
 * same 1:1 gradient mix by putting both kinds in every batch, which the default 0.5 does. Both kinds share
 * one mean over the batch's (image, class) pairs in the image-level loss and one pixel mean in the pixel
 * loss.
 *
 * `semantics` says what the listed classes mean for the classes *not* listed:
 * - `"complete"` (absent: the default, so specs without it keep their hash): the list is every class in
 *   the image, so the others are negatives (ccp's tags: "the classes present").
 * - `"partial"`: only the listed classes are known, as positives; every other class is unknown, neither
 *   positive nor negative (clothing/'s single-label, object-centric photos: a photo labelled "t-shirt"
 *   may show pants). The multi-label (ASL / BCE) loss of ξ leaves the unknown classes out of the sum
 *   (`imageLabelsKnown`, data/mixed_loader.ts); LarvSeg's image-level loss, a softmax, is the same for
 *   both (interpret/segmenter.ts says why).
 */
export const ImageLevelData = Schema.Struct({
  labels: Schema.String,
  ratio: Schema.Number.check(
    Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMinimum: true, exclusiveMaximum: true }),
  ).pipe(withDefault(0.5)),
  semantics: Schema.optionalKey(Schema.Literals(["complete", "partial"])),
});
export type ImageLevelData = typeof ImageLevelData.Type;

/** `data.imageLevel`: one image-level source, or several mixed into every batch side by side. */
export const ImageLevelSources = Schema.Union([
  ImageLevelData,
  Schema.Array(ImageLevelData).check(Schema.isMinLength(1)),
]);
export type ImageLevelSources = typeof ImageLevelSources.Type;

/** The sources of a `data.imageLevel` field as a list (none when absent). */
export const imageLevelSources = (il: ImageLevelSources | undefined): readonly ImageLevelData[] =>
  il === undefined ? [] : Array.isArray(il) ? il : [il as ImageLevelData];

/** Whether a source's unlisted classes are unknown (`semantics: "partial"`), not negatives. */
export const isPartial = (source: ImageLevelData): boolean => source.semantics === "partial";

/** The per-batch split of an image-level source: image-level images and pixel-labelled ones. */
export const imageLevelShare = (batchSize: number, ratio: number) => {
  const imageLevel = Math.round(batchSize * ratio);
  return { imageLevel, pixel: batchSize - imageLevel };
};

/**
 * The per-batch split over several sources: `round(batchSize · ratio)` images of each source, in the
 * listed order, and the pixel-labelled images the rest (which may come out below 1: a spec rule).
 */
export const imageLevelShares = (batchSize: number, sources: readonly ImageLevelData[]) => {
  const perSource = sources.map((s) => imageLevelShare(batchSize, s.ratio).imageLevel);
  return { perSource, pixel: batchSize - perSource.reduce((a, b) => a + b, 0) };
};

/** An image-level data source with defaults (ratio 0.5, the official 1:1); throws on invalid input. */
export const imageLevelData = (input: typeof ImageLevelData.Encoded): ImageLevelData =>
  constructed(decodeConfig(ImageLevelData, input, "imageLevelData(...)"));

/** mmsegmentation's ImageNet mean, RGB order, 0..255 scale. */
export const IMAGENET_MEAN = [123.675, 116.28, 103.53] as const;
/** mmsegmentation's ImageNet std, RGB order, 0..255 scale. */
export const IMAGENET_STD = [58.395, 57.12, 57.375] as const;

const Size = Schema.Tuple([PositiveInt, PositiveInt]);
const PositiveStd = Triple.check(
  Schema.makeFilter((s) => s.every((v) => v > 0) ? undefined : "std must be positive"),
);

/**
 * The training pipeline, mmsegmentation's: random rescale of `scale` ([long, short] edge) by a ratio in
 * `ratioRange`, random crop to `cropSize` ([height, width]) avoiding crops where one class covers more
 * than `catMaxRatio` (1 = off), horizontal flip with `flipProb`, photometric distortion, normalization
 * with `mean`/`std` (RGB), then padding to the crop size with `padValue` (images, after normalization)
 * and the ignore index (labels).
 */
export const TrainPipeline = Schema.Struct({
  scale: Size.pipe(withDefault([2048, 512])),
  ratioRange: Schema.Tuple([Schema.Number, Schema.Number]).check(
    Schema.makeFilter(([lo, hi]) =>
      lo > 0 && lo <= hi ? undefined : "ratioRange must be [min, max] with 0 < min <= max"
    ),
  ).pipe(withDefault([0.5, 2.0])),
  cropSize: Size.pipe(withDefault([512, 512])),
  catMaxRatio: Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMinimum: true })).pipe(
    withDefault(0.75),
  ),
  flipProb: Probability.pipe(withDefault(0.5)),
  photometric: Schema.Boolean.pipe(withDefault(true)),
  mean: Triple.pipe(withDefault([...IMAGENET_MEAN])),
  std: PositiveStd.pipe(withDefault([...IMAGENET_STD])),
  padValue: Schema.Number.pipe(withDefault(0)),
});
export type TrainPipeline = typeof TrainPipeline.Type;
export type TrainPipelineInput = typeof TrainPipeline.Encoded;

/**
 * The test pipeline: optionally resize keeping the aspect ratio so that the long edge fits `resize[0]` and
 * the short edge fits `resize[1]` (mmsegmentation's `Resize(scale, keep_ratio=True)`), then normalize.
 * `resize: null` (the default) keeps the original size. Whole vs sliding-window inference is decided by
 * the inference code; see `slideWindows`.
 */
export const TestPipeline = Schema.Struct({
  resize: Schema.NullOr(Size).pipe(withDefault(null)),
  mean: Triple.pipe(withDefault([...IMAGENET_MEAN])),
  std: PositiveStd.pipe(withDefault([...IMAGENET_STD])),
});
export type TestPipeline = typeof TestPipeline.Type;
export type TestPipelineInput = typeof TestPipeline.Encoded;

/** A training pipeline with mmsegmentation's defaults for every field not given; throws on invalid input. */
export const trainPipeline = (input: TrainPipelineInput = {}): TrainPipeline =>
  constructed(decodeConfig(TrainPipeline, input, "trainPipeline(...)"));

/** A test pipeline with defaults for every field not given; throws on invalid input. */
export const testPipeline = (input: TestPipelineInput = {}): TestPipeline =>
  constructed(decodeConfig(TestPipeline, input, "testPipeline(...)"));
