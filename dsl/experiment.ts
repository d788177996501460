/**
 * Experiments: everything a run depends on besides the seed and the code — the model, the data and its
 * pipelines, the training and evaluation settings — as one spec with a stable content hash.
 *
 * An experiment is a `.ts` module whose default export is an experiment value, or a `.json` file with
 * the same content (`deno task spec` prints it). Loading decodes and validates it; every violation is
 * reported with its path.
 */
import { Effect, Result, Schema } from "effect";
import { existsSync } from "node:fs";
import { extname, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { DatasetSpec, ImageLevelData, imageLevelShare, TestPipeline, TrainPipeline } from "./dataset.ts";
import { backboneStride, Model, type ModelSpec, panopticStrides, usesImageLabels } from "./model.ts";
import { EvalConfig, TrainConfig } from "./training.ts";
import { decodeWith, SpecError, type Violation } from "./validate.ts";
import { modelKindsVersion, modelSchema, modelViolations } from "./model_kinds.ts";
import { canonicalJson, specHash } from "./canonical.ts";

/**
 * The data of an experiment: the pixel-labelled dataset, its pipelines and, for LarvSeg, an optional
 * image-level source mixed into every training batch (`imageLevel`, see `ImageLevelData`).
 */
export const DataConfig = Schema.Struct({
  dataset: DatasetSpec,
  train: TrainPipeline,
  test: TestPipeline,
  imageLevel: Schema.optionalKey(ImageLevelData),
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

/** The cross-field rules of an experiment (model rules included). */
export const experimentViolations = (e: AnyExperiment): Violation[] => {
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
  const il = e.data.imageLevel;
  if (il) {
    const share = imageLevelShare(e.train.batchSize, il.ratio);
    if (share.imageLevel < 1 || share.pixel < 1) {
      out.push({
        path: "data.imageLevel.ratio",
        message:
          `${il.ratio} of a batch of ${e.train.batchSize} leaves ${share.pixel} pixel-labelled and ${share.imageLevel} image-level images; each kind needs at least 1`,
      });
    }
    if (model._tag !== "Segmenter" || !usesImageLabels(model)) {
      out.push({
        path: "data.imageLevel",
        message: "image-level images train only through model.imageLevelLoss or model.attentiveClassifier",
      });
    }
    if (e.data.dataset.imageLabels === undefined) {
      out.push({
        path: "data.dataset.imageLabels",
        message:
          `with data.imageLevel the pixel-labelled images need image-level labels too ("image" or "crop")`,
      });
    }
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
 * Decodes and validates an experiment value; `source` names where it came from. The model may be of any
 * registered kind: its type says `Experiment` (the built-in kinds) for the programs written against
 * those; a registered kind's model is read through its own record (`kinds/`), never by its fields here.
 */
export const decodeExperiment = (input: unknown, source: string): Effect.Effect<Experiment, SpecError> => {
  const decoded = Result.flatMap(decodeWith(currentSchema(), input, ""), (e) => {
    const violations = experimentViolations(e);
    return violations.length ? Result.fail(violations) : Result.succeed(e as Experiment);
  });
  return Result.isSuccess(decoded)
    ? Effect.succeed(decoded.success)
    : Effect.fail(new SpecError({ source, violations: decoded.failure }));
};

/** Loads an experiment from a `.ts` module (default export) or a `.json` file. */
export const loadExperiment = (file: string): Effect.Effect<Experiment, SpecError> =>
  Effect.gen(function* () {
    const fail = (message: string) =>
      Effect.fail(new SpecError({ source: file, violations: [{ path: file, message }] }));
    if (!existsSync(file)) return yield* fail("no such file");
    const ext = extname(file).toLowerCase();
    let value: unknown;
    if (ext === ".json") {
      const text = yield* Effect.tryPromise({ try: () => Deno.readTextFile(file), catch: (e) => String(e) })
        .pipe(
          Effect.catch((message) => fail(`cannot read: ${message}`)),
        );
      value = yield* Effect.try({ try: () => JSON.parse(text), catch: (e) => (e as Error).message }).pipe(
        Effect.catch((message) => fail(`invalid JSON: ${message}`)),
      );
    } else if ([".ts", ".js", ".mts", ".mjs"].includes(ext)) {
      const module = yield* Effect.tryPromise({
        try: () => import(pathToFileURL(resolve(file)).href),
        catch: (e) => (e as Error).message.split("\n")[0],
      }).pipe(Effect.catch((message) => fail(`cannot import: ${message}`)));
      if (module.default === undefined) return yield* fail("the module has no default export");
      value = module.default;
    } else return yield* fail(`expected a .ts module or a .json file, got "${ext || file}"`);
    return yield* decodeExperiment(value, file);
  });

/** The canonical JSON text of an experiment. */
export const experimentJson = (e: AnyExperiment): string => canonicalJson(e);

/** The experiment's content hash (hex SHA-256 of its canonical JSON). */
export const experimentHash = (e: AnyExperiment): string => specHash(e);
