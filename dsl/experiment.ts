/**
 * Experiments: everything a run depends on besides the seed and the code — the model, the data and its
 * pipelines, the training and evaluation settings — as one spec with a stable content hash.
 *
 * An experiment is a `.ts` module whose default export is an experiment value, or a `.json` file with
 * the same content (`deno task spec` prints it). Loading decodes and validates it; every violation is
 * reported with its path.
 */
import { Effect, Result, Schema } from "effect";
import {
  DatasetSpec,
  type ImageLevelData,
  imageLevelShares,
  ImageLevelSources,
  imageLevelSources,
  isPartial,
  TestPipeline,
  TrainPipeline,
} from "./dataset.ts";
import {
  backboneStride,
  Model,
  type ModelSpec,
  panopticStrides,
  type Segmenter,
  usesImageLabels,
  xiLearnsFromImageLabels,
} from "./model.ts";
import { EvalConfig, type FrozenBackbone, TrainConfig } from "./training.ts";
import { decodeWith, SpecError, type Violation } from "./validate.ts";
import { modelKindsVersion, modelSchema, modelViolations } from "./model_kinds.ts";
import { canonicalJson, specHash } from "./canonical.ts";
import { loadSpecFile } from "./load_spec.ts";

/**
 * The data of an experiment: the pixel-labelled dataset, its pipelines and, for LarvSeg's losses or ξ's
 * multi-label loss, optional image-level sources mixed into every training batch (`imageLevel`: one
 * source or a list, see `ImageLevelData`).
 */
export const DataConfig = Schema.Struct({
  dataset: DatasetSpec,
  train: TrainPipeline,
  test: TestPipeline,
  imageLevel: Schema.optionalKey(ImageLevelSources),
});
export type DataConfig = typeof DataConfig.Type;

const experimentFields = <S extends Schema.Codec<ModelSpec, unknown> | typeof Model>(model: S) => ({
  name: Schema.String.check(Schema.isMinLength(1)),
  model,
  data: DataConfig,
  train: TrainConfig,
  eval: EvalConfig,
});

/** The schema of an experiment whose model is of a built-in kind (the `Experiment` type). */
export const Experiment = Schema.TaggedStruct("Experiment", experimentFields(Model));
export type Experiment = typeof Experiment.Type;

/** An experiment whose model is an `M`: a built-in kind, or one registered with `registerModelSchema`. */
export type ExperimentOf<M extends ModelSpec> = Omit<Experiment, "model"> & { readonly model: M };
/** An experiment of any registered model kind: what the generic programs (train, eval, predict, export) take. */
export type AnyExperiment = ExperimentOf<ModelSpec>;

/** The schema of an experiment whose model is of any registered kind, rebuilt when a kind is registered. */
const currentSchema = (() => {
  let built: { version: number; schema: Schema.Codec<AnyExperiment, unknown> } | undefined;
  return () => {
    if (built?.version !== modelKindsVersion()) {
      const schema = Schema.TaggedStruct("Experiment", experimentFields(modelSchema()));
      built = {
        version: modelKindsVersion(),
        schema: schema as unknown as Schema.Codec<AnyExperiment, unknown>,
      };
    }
    return built.schema;
  };
})();

/** An experiment; its type keeps the model's kind (`experiment({ model: segmenter(...) })` has a Segmenter). */
export const experiment = <M extends ModelSpec>(
  e: Omit<Experiment, "_tag" | "model"> & { readonly model: M },
): ExperimentOf<M> => ({ _tag: "Experiment", ...e });

/**
 * The cross-field rules of an experiment (model rules included). `train` may be missing (it did not
 * decode): the rules that need it are skipped.
 */
export const experimentViolations = (
  e: Omit<AnyExperiment, "train"> & { readonly train?: Experiment["train"] },
): Violation[] => {
  const out = modelViolations(e.model, "model");
  // The rules below that name a kind look at built-in kinds; a registered kind's tag matches none of them.
  const model = e.model as Model;
  const stride = backboneStride(model.backbone);
  const unit = model.backbone._tag === "ViT"
    ? `the patch size (${stride})`
    : `the backbone stride (${stride})`;
  const multiple = (path: string, size: readonly number[] | null) => {
    const bad = size?.find((s) => s % stride !== 0);
    if (bad !== undefined) out.push({ path, message: `${bad} is not a multiple of ${unit}` });
  };
  multiple("data.train.cropSize", e.data.train.cropSize);
  const r = model._tag === "Segmenter" ? model.pixelLossDownsample : undefined;
  if (r !== undefined && stride % r !== 0) {
    out.push({
      path: "model.pixelLossDownsample",
      message: `${r} does not divide ${unit}: the loss size would not be a whole number of pixels ` +
        "between the label size and the feature grid",
    });
  }
  const aux = model._tag === "Segmenter" ? model.attentiveClassifier : undefined;
  if (aux) {
    const [h, w] = e.data.train.cropSize.map((s) => Math.floor(s / stride));
    if (aux.pixels > h * w) {
      out.push({
        path: "model.attentiveClassifier.pixels",
        message: `${aux.pixels} exceeds the ${h}×${w} = ${h * w} feature pixels of the training crop`,
      });
    }
  }
  const sources = imageLevelSources(e.data.imageLevel);
  if (sources.length > 0) {
    const single = !Array.isArray(e.data.imageLevel);
    const at = (i: number) => single ? "data.imageLevel" : `data.imageLevel[${i}]`;
    const batch = e.train?.batchSize;
    if (batch !== undefined) {
      const { perSource, pixel } = imageLevelShares(batch, sources);
      perSource.forEach((q, i) => {
        if (q < 1) {
          out.push({
            path: `${at(i)}.ratio`,
            message: `${
              sources[i].ratio
            } of a batch of ${batch} is ${q} images; each source needs at least 1`,
          });
        }
      });
      if (pixel < 1) {
        out.push({
          path: single ? "data.imageLevel.ratio" : "data.imageLevel",
          message: `the ratios (${
            sources.map((s) => s.ratio).join(" + ")
          }) leave ${pixel} of a batch of ${batch} ` +
            "for pixel-labelled images; they need at least 1",
        });
      }
    }
    const larvSeg = model._tag === "Segmenter" && usesImageLabels(model);
    if (model._tag !== "Segmenter" || !(larvSeg || xiLearnsFromImageLabels(model))) {
      out.push({
        path: "data.imageLevel",
        message: "image-level images train only through model.imageLevelLoss, model.attentiveClassifier or " +
          "a joint ξ's model.multiLabelLoss",
      });
    }
    if (larvSeg && e.data.dataset.imageLabels === undefined) {
      out.push({
        path: "data.dataset.imageLabels",
        message:
          `with data.imageLevel the pixel-labelled images need image-level labels too ("image" or "crop")`,
      });
    }
  }
  const frozen = e.train?.frozenBackbone;
  if (frozen && frozen.draws > 0) {
    // A feature cache holds the backbone's outputs, which the independent scheme's ranker does not read.
    if (model._tag === "Segmenter" && model.scheme._tag === "Independent") {
      out.push({
        path: "train.frozenBackbone.draws",
        message: `${frozen.draws}: the independent scheme's ranker reads the images, which a feature cache ` +
          "replaces; use draws: 0 (the frozen backbone runs every step)",
      });
    }
  }
  if (e.eval.recallAt !== undefined && e.eval.recallAt > e.model.classes) {
    out.push({
      path: "eval.recallAt",
      message: `${e.eval.recallAt} exceeds the number of classes (${e.model.classes})`,
    });
  }
  const novel = e.eval.novel ?? [];
  const twice = novel.find((n, i) => novel.indexOf(n) !== i);
  if (twice !== undefined) out.push({ path: "eval.novel", message: `"${twice}" is listed twice` });
  if (model._tag === "PanopticSegmenter") {
    // Panoptic targets are segments (one mask per thing instance and per stuff class).
    if (e.data.dataset._tag !== "CocoPanoptic") {
      out.push({
        path: "data.dataset",
        message: `a PanopticSegmenter trains on panoptic segments, which only CocoPanoptic datasets have ` +
          `(this one is ${e.data.dataset._tag})`,
      });
    }
    const finest = panopticStrides(model.backbone);
    const coarsest = Math.max(...finest);
    const bad = e.data.train.cropSize.find((s) => s % coarsest !== 0);
    if (bad !== undefined && coarsest !== stride) {
      out.push({
        path: "data.train.cropSize",
        message: `${bad} is not a multiple of the coarsest backbone stride (${coarsest})`,
      });
    }
  }
  // Pretrained weights see their inputs only through the pipeline's normalization: it must be theirs.
  const expects = model.backbone._tag === "MobileNetV2" ? model.backbone.expects : null;
  if (expects) {
    const differs = (a: readonly number[], b: readonly number[]) =>
      a.some((x, i) => Math.abs(x - b[i]) > 1e-6);
    for (const [where, pipeline] of [["data.train", e.data.train], ["data.test", e.data.test]] as const) {
      for (const key of ["mean", "std"] as const) {
        if (differs(pipeline[key], expects[key])) {
          out.push({
            path: `${where}.${key}`,
            message: `[${pipeline[key].join(", ")}] differs from what model.backbone.pretrained expects ([${
              expects[key].join(", ")
            }])`,
          });
        }
      }
    }
  }
  if (e.eval.mode === "slide") {
    if (!e.eval.crop || !e.eval.stride) {
      out.push({ path: "eval", message: "slide mode needs eval.crop and eval.stride" });
    }
    multiple("eval.crop", e.eval.crop);
  }
  return out;
};

/**
 * The cross-field rules of the parts that decode when the experiment as a whole does not (a bad
 * train.steps, say), so that one run of validation reports every violation, not only the structural
 * ones: the model's own rules once the model decodes, the rules between model, data and evaluation once
 * those three do (train's are skipped if train does not).
 */
const rulesOfDecodedParts = (input: unknown): Violation[] => {
  const o = (typeof input === "object" && input !== null ? input : {}) as Record<string, unknown>;
  const part = <S extends Schema.Constraint & Schema.ConstraintDecoder<unknown>>(schema: S, key: string) => {
    const decoded = decodeWith(schema, o[key], key);
    return Result.isSuccess(decoded) ? decoded.success as S["Type"] : undefined;
  };
  const model = part(modelSchema(), "model");
  if (model === undefined) return [];
  const [data, evaluation] = [part(DataConfig, "data"), part(EvalConfig, "eval")];
  if (data === undefined || evaluation === undefined) return modelViolations(model, "model");
  const train = part(TrainConfig, "train");
  return experimentViolations({
    _tag: "Experiment",
    name: "",
    model,
    data,
    eval: evaluation,
    ...(train ? { train } : {}),
  });
};

/**
 * Decodes and validates an experiment value, reporting every violation; `source` names where it came from.
 * The model may be of any registered kind: its type says `Experiment` (the built-in kinds) for the
 * programs written against those; a registered kind's model is read through its own record (`kinds/`),
 * never by its fields here.
 */
export const decodeExperiment = (input: unknown, source: string): Effect.Effect<Experiment, SpecError> => {
  const decoded = decodeWith(currentSchema(), input, "");
  const violations = Result.isSuccess(decoded)
    ? experimentViolations(decoded.success)
    : [...decoded.failure, ...rulesOfDecodedParts(input)];
  return Result.isSuccess(decoded) && violations.length === 0
    ? Effect.succeed(decoded.success as Experiment)
    : Effect.fail(new SpecError({ source, violations }));
};

/**
 * Loads an experiment from a `.ts` module (default export) or a `.json` file (`dsl/load_spec.ts`). A file
 * that cannot be loaded is one violation of the whole file (empty path); a module that does not import
 * names the line and column (`SpecError.source` = `file:line:column` when the error is in the module).
 */
export const loadExperiment = (file: string): Effect.Effect<Experiment, SpecError> =>
  loadSpecFile(file).pipe(
    Effect.mapError((e) => new SpecError({ source: e.file, violations: [{ path: "", message: e.message }] })),
    Effect.flatMap((value) => decodeExperiment(value, file)),
  );

/**
 * The experiment with a step count, a seed and a frozen backbone of its own, each only when given: what
 * `train --steps N --seed S --frozen-backbone D` runs, and how the experiment grids make one run per seed
 * from a row's spec (`grid … --frozen-backbone D`: every row trains its head on the frozen backbone).
 * A `frozenBackbone` replaces the spec's own; the spec's is kept when none is given.
 */
export const withOverrides = <E extends AnyExperiment>(
  e: E,
  steps?: number,
  seed?: number,
  frozenBackbone?: FrozenBackbone,
): E => ({
  ...e,
  train: {
    ...e.train,
    ...(steps === undefined ? {} : { steps }),
    ...(seed === undefined ? {} : { seed }),
    ...(frozenBackbone === undefined ? {} : { frozenBackbone }),
  },
});

/**
 * The experiment with image-level sources mixed into its batches, on top of whatever else it sets (a
 * grid's overrides, another training protocol): the experiment's pixel-labelled images per batch stay as
 * they are and the batch grows so that each source gets its ratio of it (4 pixel-labelled images with one
 * source of ratio 0.5: a batch of 4 + 4; with two of 0.25: 4 + 2 + 2). Sources the experiment had are
 * replaced; none leaves it without `data.imageLevel`. Ratios that no whole batch splits this way are left
 * to the spec rules (`experimentViolations`) to name.
 */
export const withImageLevelSources = <E extends Experiment>(e: E, sources: readonly ImageLevelData[]): E => {
  const { pixel } = imageLevelShares(e.train.batchSize, imageLevelSources(e.data.imageLevel));
  const { imageLevel: _, ...data } = e.data;
  if (sources.length === 0) return { ...e, data, train: { ...e.train, batchSize: pixel } };
  const share = sources.reduce((a, s) => a + s.ratio, 0);
  const batchSize = share < 1 ? Math.round(pixel / (1 - share)) : pixel;
  return {
    ...e,
    data: { ...data, imageLevel: sources.length === 1 ? sources[0] : [...sources] },
    train: { ...e.train, batchSize },
  };
};

/** The canonical JSON text of an experiment. */
export const experimentJson = (e: AnyExperiment): string => canonicalJson(e);

/** The experiment's content hash (hex SHA-256 of its canonical JSON). */
export const experimentHash = (e: AnyExperiment): string => specHash(e);

/**
 * What a segmenter's training graph takes besides images and labels: `imageLabels` [b, K] and
 * `pixelLabelled` [b] when LarvSeg's losses read them or ξ learns from image-level sources, and
 * `imageLabelsKnown` [b, K] when ξ's multi-label loss must leave unknown classes out (a `partial` source).
 */
export const imageLabelInputs = (
  model: Segmenter,
  data: Pick<DataConfig, "imageLevel">,
): { readonly imageLabels: boolean; readonly known: boolean } => {
  const sources = imageLevelSources(data.imageLevel);
  const xi = xiLearnsFromImageLabels(model);
  return {
    imageLabels: usesImageLabels(model) || (xi && sources.length > 0),
    known: xi && sources.some(isPartial),
  };
};
