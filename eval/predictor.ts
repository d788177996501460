/**
 * Whole-image and sliding-window inference with a trained state.
 *
 * Graphs are traced at static shapes, so a predictor keeps one inference session per input shape it
 * has seen (images of a dataset come in a few sizes). Whole mode pads the image to a multiple of the
 * backbone stride and crops the prediction back; slide mode runs crop-sized windows, averages their
 * K-class logits at input resolution and takes the argmax (mmsegmentation's `slide_inference`).
 * Predictions are made at the size of the original label map, resizing logits bilinearly.
 */
import { Effect, Scope } from "effect";
import type { Segmenter } from "../dsl/model.ts";
import type { Ranker } from "../interpret/segmenter.ts";
import { CLASSES, FULL, inferenceGraph, SCORES, SELECTED } from "../interpret/segmenter.ts";
import { backboneStride } from "../dsl/model.ts";
import { Graph } from "../ir/graph.ts";
import * as o from "../ir/ops.ts";
import { execute, type Executor, type ProviderUnavailable, type RuntimeOptions } from "../runtime/execute.ts";
import { graphStage, plan, type RuntimeError } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { slideWindows } from "../data/slide.ts";

export interface PredictOptions extends RuntimeOptions {
  readonly mode: "whole" | "slide";
  readonly crop?: readonly [number, number] | null;
  readonly stride?: readonly [number, number] | null;
  /** Select the ground-truth classes (needs labels at the input size). */
  readonly oracle?: boolean;
  readonly ranker?: Ranker;
  /** The ranker-quality probe's α (interpret/segmenter.ts `InferenceOptions.groundTruthWeight`). */
  readonly groundTruthWeight?: number;
  /** The training crop [h, w] (position embeddings' grid). */
  readonly trainSize: readonly [number, number];
}

export interface Prediction {
  /** Class per pixel at the requested output size, row-major (empty for multi-label-only models). */
  readonly classes: Int32Array;
  /** Multi-label scores (sigmoid), when the model has a ranking. */
  readonly scores?: Float32Array;
  /** The selected classes, best first (of the whole image, or of the first window). */
  readonly selected?: readonly number[];
}

export interface Predictor {
  /**
   * Predicts one normalized image [1, 3, height, width]; `labels` (same size) feed the oracle.
   * `output` is the size of the returned class map.
   */
  readonly predict: (
    image: Float32Array,
    height: number,
    width: number,
    output: readonly [number, number],
    labels?: Int32Array,
  ) => Effect.Effect<Prediction, RuntimeError | ProviderUnavailable>;
}

/** A predictor over a trained state, which also gives the logits it argmaxes. */
export interface StatePredictor extends Predictor {
  /**
   * The K-class logits [K, height, width] of one normalized image at its input size (whole-image
   * inference, padded to the backbone stride and cropped back): what diagnostics read per pixel.
   */
  readonly logits: (
    image: Float32Array,
    height: number,
    width: number,
  ) => Effect.Effect<Float32Array, RuntimeError | ProviderUnavailable>;
}

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/** Copies rows [y0, y0+h) × cols [x0, x0+w) of a [c, H, W] array into a zero-padded [c, ph, pw] one. */
const window = <T extends Float32Array | Int32Array>(
  src: T,
  channels: number,
  [height, width]: readonly [number, number],
  [y0, x0, h, w]: readonly [number, number, number, number],
  [ph, pw]: readonly [number, number],
  fill: number,
): T => {
  const out = new (src.constructor as new (n: number) => T)(channels * ph * pw).fill(fill) as T;
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < h; y++) {
      const from = (c * height + y0 + y) * width + x0;
      out.set(src.subarray(from, from + w) as never, (c * ph + y) * pw);
    }
  }
  return out;
};

export const makePredictor = (
  model: Segmenter,
  state: ReadonlyMap<string, Value>,
  options: PredictOptions,
): Effect.Effect<StatePredictor, never, Scope.Scope> =>
  Effect.gen(function* () {
    const scope = yield* Effect.scope;
    const sessions = new Map<string, Executor>();
    const stride = backboneStride(model.backbone);
    const ignore = model.ignoreIndex;

    /** An executor for a graph, opened once per key and fed the trained state. */
    const executor = (key: string, build: () => Graph) =>
      Effect.gen(function* () {
        const cached = sessions.get(key);
        if (cached) return cached;
        const g = build();
        const ex = yield* execute(plan(key, g, [graphStage(g)]), options).pipe(Scope.provide(scope));
        for (const name of ex.state.keys()) {
          const v = state.get(name);
          if (v) ex.state.set(name, v);
        }
        sessions.set(key, ex);
        return ex;
      });

    const run = (
      h: number,
      w: number,
      extra: { valid?: readonly [number, number]; output?: readonly [number, number]; full?: boolean },
      image: Float32Array,
      labels?: Int32Array,
    ) =>
      Effect.gen(function* () {
        const key = `${h}x${w}:${extra.valid ?? ""}:${extra.output ?? ""}:${extra.full ?? false}`;
        const ex = yield* executor(key, () =>
          inferenceGraph(model, { batch: 1, height: h, width: w, trainSize: options.trainSize }, {
            oracle: options.oracle,
            ranker: options.ranker,
            groundTruthWeight: options.groundTruthWeight,
            valid: extra.valid,
            output: extra.output,
            fullLogits: extra.full,
          }));
        const feeds: Record<string, Value> = { images: value("float32", image, [1, 3, h, w]) };
        if (ex.plan.feeds.some((f) => f.name === "labels")) {
          feeds.labels = value("int32", labels ?? new Int32Array(h * w).fill(ignore), [1, h, w]);
        }
        return yield* ex.run(feeds);
      });

    /** The image zero-padded to a multiple of the backbone stride (bottom and right), and that size. */
    const padToStride = (image: Float32Array, height: number, width: number) => {
      const [ph, pw] = [roundUp(height, stride), roundUp(width, stride)];
      const padded = ph === height && pw === width
        ? image
        : window(image, 3, [height, width], [0, 0, height, width], [ph, pw], 0);
      return { ph, pw, padded };
    };

    const whole = (
      image: Float32Array,
      height: number,
      width: number,
      output: readonly [number, number],
      labels?: Int32Array,
    ) =>
      Effect.gen(function* () {
        const { ph, pw, padded } = padToStride(image, height, width);
        const paddedLabels = labels &&
          window(labels, 1, [height, width], [0, 0, height, width], [ph, pw], ignore);
        const out = yield* run(ph, pw, { valid: [height, width], output }, padded, paddedLabels);
        return {
          // A multi-label-only model (no ψ) predicts no classes, only scores.
          classes: Int32Array.from((out.get(CLASSES)?.data ?? []) as BigInt64Array, Number),
          scores: out.get(SCORES)?.data as Float32Array | undefined,
          selected: out.has(SELECTED)
            ? Array.from(out.get(SELECTED)!.data as BigInt64Array, Number)
            : undefined,
        };
      });

    const slide = (
      image: Float32Array,
      height: number,
      width: number,
      output: readonly [number, number],
      labels?: Int32Array,
    ) =>
      Effect.gen(function* () {
        const crop = options.crop!, stride = options.stride!;
        const k = model.classes;
        const sum = new Float32Array(k * height * width);
        const count = new Uint16Array(height * width);
        let scores: Float32Array | undefined, selected: number[] | undefined;
        for (const win of slideWindows(height, width, crop, stride)) {
          const [wh, ww] = [win.y1 - win.y0, win.x1 - win.x0];
          const part = window(image, 3, [height, width], [win.y0, win.x0, wh, ww], crop, 0);
          const partLabels = labels &&
            window(labels, 1, [height, width], [win.y0, win.x0, wh, ww], crop, ignore);
          const out = yield* run(crop[0], crop[1], { full: true }, part, partLabels);
          const logits = out.get(FULL)!.data as Float32Array; // [1, K, ch, cw]
          for (let c = 0; c < k; c++) {
            for (let y = 0; y < wh; y++) {
              const dst = (c * height + win.y0 + y) * width + win.x0, src = (c * crop[0] + y) * crop[1];
              for (let x = 0; x < ww; x++) {
                sum[dst + x] += logits[src + x];
              }
            }
          }
          for (let y = 0; y < wh; y++) {
            for (let x = 0; x < ww; x++) {
              count[(win.y0 + y) * width + win.x0 + x]++;
            }
          }
          // A class is scored present if any window scores it: the max over windows.
          const s = out.get(SCORES)?.data as Float32Array | undefined;
          if (s) {
            scores = scores
              ? scores.map((v, i) => Math.max(v, s[i]))
              : Float32Array.from(s);
          }
          selected ??= out.has(SELECTED)
            ? Array.from(out.get(SELECTED)!.data as BigInt64Array, Number)
            : undefined;
        }
        for (let i = 0; i < sum.length; i++) sum[i] /= count[i % (height * width)];
        const ex = yield* executor(
          `argmax:${height}x${width}->${output}`,
          () => resizeArgmaxGraph(k, height, width, output),
        );
        const classes = (yield* ex.run({ logits: value("float32", sum, [1, k, height, width]) })).get(
          "classes",
        )!;
        return { classes: Int32Array.from(classes.data as BigInt64Array, Number), scores, selected };
      });

    const logits = (image: Float32Array, height: number, width: number) =>
      Effect.gen(function* () {
        const { ph, pw, padded } = padToStride(image, height, width);
        const out = yield* run(ph, pw, { full: true }, padded);
        const full = out.get(FULL)!.data as Float32Array; // [1, K, ph, pw]
        return ph === height && pw === width
          ? full
          : window(full, model.classes, [ph, pw], [0, 0, height, width], [height, width], 0);
      });

    return {
      logits,
      predict: (image, height, width, output, labels) =>
        options.mode === "slide"
          ? slide(image, height, width, output, labels)
          : whole(image, height, width, output, labels),
    };
  });

/** logits [1, K, h, w] → bilinear resize to `output` → argmax: classes [1, oh, ow]. */
const resizeArgmaxGraph = (k: number, h: number, w: number, [oh, ow]: readonly [number, number]): Graph => {
  const g = new Graph("resizeArgmax");
  const logits = o.input(g, "logits", [1, k, h, w]);
  g.output("classes", o.argMax(oh === h && ow === w ? logits : o.resize(logits, oh, ow), 1));
  return g;
};
