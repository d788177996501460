/**
 * `deno task classify <experiment | run-dir | weights.safetensors> <image...> [--names FILE] [--json]`:
 * each image's top classes with their probabilities and names — how a user checks an imported checkpoint.
 *
 * A `.safetensors` file is read as an ImageNet MobileNetV2 in torchvision's layout (SAME padding unless
 * `--padding symmetric`), its class count taken from the file; an experiment or run must hold a
 * Classifier model. Class names come from `--names` (one per line), else from `imagenet_classes.txt`
 * beside the weights file when it has one name per class.
 */
import { Console, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join } from "node:path";
import {
  type Classifier,
  classifier,
  type InputScaling,
  MINUS_ONE_TO_ONE,
  mobileNetV2,
} from "../dsl/model.ts";
import { loadExperiment } from "../dsl/experiment.ts";
import { requireKind } from "../kinds/registry.ts";
import { classifierKind } from "../kinds/classifier.ts";
import { inferenceGraph } from "../interpret/graphs.ts";
import { pretrainedValues } from "../interpret/pretrained.ts";
import { readSafetensorsFile } from "../weights/import.ts";
import { type Value, value } from "../ir/value.ts";
import { loadRun } from "../train/load_run.ts";
import { classifyImages } from "../eval/classify.ts";
import { runFlags } from "./train.ts";
import type { Provider } from "../runtime/execute.ts";
import { BOUNDS, intFlag, pathArgument, pathFlag } from "./flag_schema.ts";
import { imageInputs, imagesArgument } from "./image_inputs.ts";

const SIZE = 224, CROP = 0.875;

/** What to classify with: a model, its parameter values, its input scaling and where names may lie. */
interface Source {
  readonly model: Classifier;
  readonly state: ReadonlyMap<string, Value>;
  readonly scaling: InputScaling;
  readonly weightsFile?: string;
}

const asState = (values: ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>) =>
  new Map([...values].map(([k, v]) => [k, value("float32", v.data, v.shape)]));

const pretrainedState = (model: Classifier) =>
  Effect.map(
    pretrainedValues(
      model,
      inferenceGraph(model, { batch: 1, height: SIZE, width: SIZE, trainSize: [SIZE, SIZE] }),
    ),
    asState,
  );

const fromWeights = (file: string, padding: "same" | "symmetric") =>
  Effect.gen(function* () {
    const tensors = yield* readSafetensorsFile(file);
    const head = tensors["classifier.1.weight"];
    const classes = head?.shape[0] ?? 1000;
    const model = classifier({
      classes,
      backbone: mobileNetV2({ outputStride: 32, outputs: ["final"], padding, pretrained: file }),
    });
    return {
      model,
      state: yield* pretrainedState(model),
      scaling: MINUS_ONE_TO_ONE,
      weightsFile: file,
    } satisfies Source;
  });

const scalingOf = (model: Classifier, test: InputScaling): InputScaling =>
  model.backbone._tag === "MobileNetV2" && model.backbone.expects ? model.backbone.expects : test;

const fromExperiment = (file: string) =>
  Effect.gen(function* () {
    const e = yield* loadExperiment(file);
    const { model } = yield* requireKind(e, classifierKind, "classify");
    const weightsFile = model.backbone._tag === "MobileNetV2"
      ? model.backbone.pretrained ?? undefined
      : undefined;
    return {
      model,
      state: yield* pretrainedState(model),
      scaling: scalingOf(model, e.data.test),
      weightsFile,
    };
  });

const fromRun = (dir: string) =>
  Effect.gen(function* () {
    const run = yield* loadRun(dir);
    const { model } = yield* requireKind(run.experiment, classifierKind, "classify");
    return { model, state: run.state, scaling: scalingOf(model, run.experiment.data.test) } satisfies Source;
  });

const sourceOf = (source: string, padding: "same" | "symmetric"): Effect.Effect<Source, unknown> =>
  existsSync(source) && statSync(source).isDirectory()
    ? fromRun(source)
    : extname(source).toLowerCase() === ".safetensors"
    ? fromWeights(source, padding)
    : fromExperiment(source);

/** Class names: `--names`, else `imagenet_classes.txt` beside the weights file when it names every class. */
const namesOf = (classes: number, names?: string, weightsFile?: string): string[] | undefined => {
  const read = (file: string) => readFileSync(file, "utf8").split("\n").map((l) => l.trim()).filter(Boolean);
  if (names) return read(names);
  const beside = weightsFile && join(dirname(weightsFile), "imagenet_classes.txt");
  if (beside && existsSync(beside)) {
    const list = read(beside);
    if (list.length === classes) return list;
  }
  return undefined;
};

export const classifyCommand = Command.make("classify", {
  source: pathArgument(
    "model",
    "what classifies: a Classifier experiment (.ts or .json), a run folder of one, or a MobileNetV2 " +
      ".safetensors file in torchvision's layout",
  ),
  images: imagesArgument(),
  names: pathFlag(
    "names",
    "class names, one per line (default: imagenet_classes.txt beside the weights file, when it names every class)",
  ).pipe(Flag.optional),
  json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("machine-readable output")),
  top: intFlag("top", BOUNDS.top, "classes per image (default 5)").pipe(Flag.withDefault(5)),
  padding: Flag.Literals("padding", ["same", "symmetric"]).pipe(
    Flag.withDefault("same" as const),
    Flag.withDescription("for a .safetensors file: SAME (TensorFlow) or symmetric (torchvision) padding"),
  ),
  provider: runFlags.provider,
  threads: runFlags.threads,
}, (a) =>
  Effect.gen(function* () {
    const images = yield* imageInputs(a.images);
    const source = yield* sourceOf(a.source, a.padding);
    const names = namesOf(source.model.classes, Option.getOrUndefined(a.names), source.weightsFile);
    if (names && names.length !== source.model.classes) {
      return yield* Effect.fail(
        new Error(`--names: ${names.length} names for a model of ${source.model.classes} classes`),
      );
    }
    const results = yield* classifyImages(source.model, source.state, images, {
      size: [SIZE, SIZE],
      cropFraction: CROP,
      scaling: source.scaling,
      top: a.top,
      provider: a.provider as Provider,
      threads: Option.getOrUndefined(a.threads),
    });
    if (a.json) {
      const withNames = results.map((r) => ({
        file: r.file,
        top: r.top.map((c) => ({ class: c.index, name: names?.[c.index], probability: c.probability })),
      }));
      return yield* Console.log(JSON.stringify(withNames, null, 2));
    }
    for (const r of results) {
      yield* Console.log(r.file);
      for (const c of r.top) {
        yield* Console.log(
          `  ${c.probability.toFixed(4)}  ${String(c.index).padStart(5)}  ${names?.[c.index] ?? ""}`
            .trimEnd(),
        );
      }
    }
  })).pipe(
    Command.withDescription(
      "Top classes of each image with a classifier: an experiment, a run or a torchvision-layout MobileNetV2 .safetensors.",
    ),
  );
