/**
 * How an image of any size goes through a model exported at a fixed input size (the training crop):
 * the one rule shared by `deno task predict --export-size`, the README's Python snippet and the
 * `metadata_props` written into the exported file.
 *
 * 1. Resize the RGB image keeping its aspect ratio to fit inside the export size H×W (bilinear):
 *    h×w = round(H0·f)×round(W0·f) with f = min(H/H0, W/W0), rounding half up.
 * 2. Normalize (x − mean) / std and pad bottom/right to H×W with 0 (0 after normalizing, as in training).
 * 3. Run; keep `classes[:h, :w]`, the image's region.
 * 4. Map back to H0×W0 by nearest neighbour, centre-aligned: output row y reads row ⌊(y + ½)·h / H0⌋.
 *
 * Why nearest on classes instead of predict's bilinear resizing of logits: the exported model has a fixed
 * output size, so a user only gets classes at H×W; the rule is one indexing step in numpy, and predict
 * follows it exactly when asked to (`--export-size`). Its default path (any input size, logits resized
 * to the original size) is unchanged.
 */
import { Effect } from "effect";
import type { AnyExperiment } from "../dsl/experiment.ts";
import { trainSize } from "../interpret/shapes.ts";
import type { RgbImage } from "../data/decode.ts";
import { resizeLabels, resizeRgb } from "../data/resize.ts";
import { normalizeRgb } from "../data/normalize.ts";
import type { Prediction, Predictor } from "./predictor.ts";

/** The size an image of H0×W0 is resized to so that it fits inside `size`, keeping its aspect ratio. */
export const fitSize = (
  height: number,
  width: number,
  [toHeight, toWidth]: readonly [number, number],
): [number, number] => {
  const f = Math.min(toHeight / height, toWidth / width);
  return [Math.max(1, Math.trunc(height * f + 0.5)), Math.max(1, Math.trunc(width * f + 0.5))];
};

/** Keeps the top-left h×w of an H×W class map and resizes it to `output` by nearest neighbour. */
export const mapBack = (
  classes: Int32Array,
  [, exportWidth]: readonly [number, number],
  [h, w]: readonly [number, number],
  [outHeight, outWidth]: readonly [number, number],
): Int32Array => {
  const region = new Int32Array(h * w);
  for (let y = 0; y < h; y++) region.set(classes.subarray(y * exportWidth, y * exportWidth + w), y * w);
  return resizeLabels(region, h, w, outHeight, outWidth);
};

/** The exported model's `metadata_props`: the export size, the normalization and the rule above. */
export const exportMetadata = (e: AnyExperiment): Record<string, string> => {
  const [height, width] = trainSize(e);
  return {
    "kappa.experiment": e.name,
    "kappa.classes": String(e.model.classes),
    "kappa.input_height": String(height),
    "kappa.input_width": String(width),
    "kappa.mean": e.data.test.mean.join(","),
    "kappa.std": e.data.test.std.join(","),
    "kappa.preprocess": `RGB; resize keeping the aspect ratio to fit inside ${height}x${width} (bilinear), ` +
      `h x w = round(H0*f) x round(W0*f), f = min(${height}/H0, ${width}/W0); (x - mean) / std; ` +
      `pad bottom/right with 0 to ${height}x${width}; NCHW float32`,
    "kappa.postprocess": "classes[:, :h, :w], then nearest neighbour to H0 x W0: " +
      "row y reads floor((y + 0.5) * h / H0), column x reads floor((x + 0.5) * w / W0)",
  };
};

/** Steps 1–2 for one image: the exported model's input [1, 3, H, W] and the fitted region h×w in it. */
export const exportInput = (img: RgbImage, e: AnyExperiment) =>
  Effect.gen(function* () {
    const size = trainSize(e);
    const fitted = fitSize(img.height, img.width, size);
    const resized = yield* resizeRgb(img.data, img.height, img.width, fitted[0], fitted[1]);
    const images = normalizeRgb(
      resized,
      fitted[0],
      fitted[1],
      e.data.test.mean,
      e.data.test.std,
      size[0],
      size[1],
      0,
    );
    return { images, fitted };
  });

/**
 * Predicts an image of any size the way the exported model is used: `predictor` must have been made
 * for the experiment's model, in whole mode; classes come back at the image's size.
 */
export const predictAtExportSize = (predictor: Predictor, img: RgbImage, e: AnyExperiment) =>
  Effect.gen(function* () {
    const size = trainSize(e);
    const { images: x, fitted: [h, w] } = yield* exportInput(img, e);
    const p = yield* predictor.predict(x, size[0], size[1], size);
    const classes = p.classes.length === 0
      ? p.classes
      : mapBack(p.classes, size, [h, w], [img.height, img.width]);
    return { ...p, classes } satisfies Prediction;
  });
