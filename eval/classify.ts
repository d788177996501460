/**
 * Classifying images with a Classifier model: ImageNet's evaluation preprocessing (the stored RGB values,
 * as PIL reads them; central crop; bilinear resize; the model's input scaling), one forward pass per
 * image, the top classes with their softmax probabilities. How a user checks an imported checkpoint
 * (`deno task classify`).
 */
import { Effect } from "effect";
import type { Classifier, InputScaling } from "../dsl/model.ts";
import { inferenceGraph } from "../interpret/graphs.ts";
import { PROBABILITIES } from "../interpret/classifier.ts";
import { execute, type RuntimeOptions } from "../runtime/execute.ts";
import { graphStage, plan } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { readRgb } from "../data/decode.ts";
import { centralCropResizeRgb } from "../data/resize.ts";
import { normalizeRgb } from "../data/normalize.ts";

export interface ClassifyOptions extends RuntimeOptions {
  /** Network input [height, width] (224×224 for the ImageNet MobileNetV2). */
  readonly size: readonly [number, number];
  /** Central crop of each side before resizing (0.875, ImageNet's evaluation crop). */
  readonly cropFraction: number;
  readonly scaling: InputScaling;
  /** How many classes to report per image. */
  readonly top: number;
}

export interface RankedClass {
  readonly index: number;
  readonly probability: number;
}

export interface Classification {
  readonly file: string;
  readonly top: readonly RankedClass[];
}

/** The `k` most probable classes, best first (ties: lower index first). */
export const topClasses = (probabilities: ArrayLike<number>, k: number): RankedClass[] =>
  Array.from(probabilities, (probability, index) => ({ index, probability }))
    .sort((a, b) => b.probability - a.probability || a.index - b.index)
    .slice(0, k);

/** Classifies each image file with `model` and its parameter `state`. */
export const classifyImages = (
  model: Classifier,
  state: ReadonlyMap<string, Value>,
  files: readonly string[],
  { size: [height, width], cropFraction, scaling, top, ...runtime }: ClassifyOptions,
) =>
  Effect.scoped(Effect.gen(function* () {
    const g = inferenceGraph(model, { batch: 1, height, width, trainSize: [height, width] });
    const ex = yield* execute(plan("classify", g, [graphStage(g)]), runtime);
    for (const name of ex.state.keys()) {
      const v = state.get(name);
      if (v) ex.state.set(name, v);
    }
    const out: Classification[] = [];
    for (const file of files) {
      const image = yield* readRgb(file, { ignoreIcc: true });
      const pixels = yield* centralCropResizeRgb(
        image.data,
        image.height,
        image.width,
        cropFraction,
        height,
        width,
      );
      const input = normalizeRgb(pixels, height, width, scaling.mean, scaling.std);
      const result = yield* ex.run({ images: value("float32", input, [1, 3, height, width]) });
      out.push({ file, top: topClasses(result.get(PROBABILITIES)!.data as Float32Array, top) });
    }
    return out;
  }));
