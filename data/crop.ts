/**
 * Random cropping (mmsegmentation's `RandomCrop`, including its `cat_max_ratio` retry rule) and the
 * horizontal flip.
 */
import type { Random } from "../core/random.ts";

/** A crop rectangle: rows `y0..y1-1`, columns `x0..x1-1`. */
export interface Box {
  readonly y0: number;
  readonly x0: number;
  readonly y1: number;
  readonly x1: number;
}

/** A uniformly placed crop of at most `crop` = [height, width] inside `height`×`width`. */
export const randomBox = (
  rng: Random,
  height: number,
  width: number,
  crop: readonly [number, number],
): Box => {
  const y0 = rng.int(Math.max(height - crop[0], 0) + 1);
  const x0 = rng.int(Math.max(width - crop[1], 0) + 1);
  return { y0, x0, y1: Math.min(y0 + crop[0], height), x1: Math.min(x0 + crop[1], width) };
};

/**
 * The largest class's share of the labeled pixels inside `box`, and how many classes are there; values
 * outside `0..numClasses-1` (ignore) are not counted.
 */
export const classShare = (
  labels: Int32Array,
  width: number,
  box: Box,
  numClasses: number,
): { readonly classes: number; readonly maxShare: number } => {
  const counts = new Int32Array(numClasses);
  let total = 0, classes = 0, max = 0;
  for (let y = box.y0; y < box.y1; y++) {
    for (let x = box.x0, p = y * width + box.x0; x < box.x1; x++, p++) {
      const v = labels[p];
      if (v < 0 || v >= numClasses) continue;
      const c = ++counts[v];
      if (c === 1) classes++;
      if (c > max) max = c;
      total++;
    }
  }
  return { classes, maxShare: total === 0 ? 1 : max / total };
};

/**
 * mmsegmentation's crop choice: draw a box; while `catMaxRatio < 1`, up to 10 times, keep it if it holds
 * more than one class and no class covers `catMaxRatio` or more of its labeled pixels, else draw again
 * (so the 11th draw is kept unchecked, as in mmsegmentation).
 */
export const chooseCrop = (
  rng: Random,
  labels: Int32Array,
  height: number,
  width: number,
  crop: readonly [number, number],
  catMaxRatio: number,
  numClasses: number,
): Box => {
  let box = randomBox(rng, height, width, crop);
  if (catMaxRatio < 1) {
    for (let attempt = 0; attempt < 10; attempt++) {
      const { classes, maxShare } = classShare(labels, width, box, numClasses);
      if (classes > 1 && maxShare < catMaxRatio) break;
      box = randomBox(rng, height, width, crop);
    }
  }
  return box;
};

/** Copies `box` out of a row-major array with `channels` interleaved values per pixel. */
export const cropArray = <T extends Uint8Array | Int32Array>(
  data: T,
  width: number,
  channels: number,
  box: Box,
): T => {
  const w = box.x1 - box.x0;
  const out = new (data.constructor as { new (n: number): T })((box.y1 - box.y0) * w * channels);
  for (let y = box.y0; y < box.y1; y++) {
    const from = (y * width + box.x0) * channels;
    out.set(data.subarray(from, from + w * channels) as never, (y - box.y0) * w * channels);
  }
  return out;
};

/** Mirrors a row-major array left–right, in place; `channels` values per pixel move together. */
export const flipHorizontal = <T extends Uint8Array | Int32Array>(
  data: T,
  height: number,
  width: number,
  channels: number,
): T => {
  for (let y = 0; y < height; y++) {
    const row = y * width * channels;
    for (let a = 0, b = width - 1; a < b; a++, b--) {
      for (let c = 0; c < channels; c++) {
        const i = row + a * channels + c, j = row + b * channels + c;
        const t = data[i];
        data[i] = data[j];
        data[j] = t;
      }
    }
  }
  return data;
};
