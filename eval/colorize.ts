/**
 * Label maps to pictures: a deterministic palette, mask colorization and alpha overlay. All images are
 * packed RGB, row-major, 3 bytes per pixel. `writePng` / `readImageRgb` are re-exported from png.ts so
 * the eval step needs one import.
 */
import { metricsInputError } from "./metrics_error.ts";

export type Rgb = readonly [number, number, number];

export { readImageRgb, type RgbImage, writePng } from "./png.ts";

/**
 * `count` distinct colors for classes without a color table. Color c spreads the bits of c + 1 across
 * the channels, most significant first: bit 3j goes to red bit 7-j, bit 3j+1 to green, bit 3j+2 to blue.
 * Neighbouring classes thus get very different colors, the mapping is one-to-one for up to 2^24 - 1
 * classes, and starting at c + 1 keeps black free for ignored pixels.
 */
export const defaultPalette = (count: number): Rgb[] =>
  Array.from({ length: count }, (_, c) => {
    let rgb = [0, 0, 0];
    let bits = c + 1;
    for (let j = 0; bits > 0 && j < 8; j++, bits >>= 3) {
      rgb = rgb.map((v, ch) => v | (((bits >> ch) & 1) << (7 - j)));
    }
    return [rgb[0], rgb[1], rgb[2]] as const;
  });

/**
 * RGB picture of a label map. Ignored pixels are black; so are labels without a palette entry, since
 * they are not a class the palette knows (the caller can spot them as unexpected black).
 */
export const colorizeMask = (
  labels: Int32Array | Uint8Array,
  width: number,
  height: number,
  colors: readonly Rgb[],
  ignoreIndex: number,
): Uint8Array => {
  if (labels.length !== width * height) {
    throw metricsInputError(
      "colorizeMask",
      "labels",
      `has ${labels.length} pixels, expected ${width}x${height}`,
    );
  }
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (l === ignoreIndex || l < 0 || l >= colors.length) continue;
    const color = colors[l];
    out[3 * i] = color[0];
    out[3 * i + 1] = color[1];
    out[3 * i + 2] = color[2];
  }
  return out;
};

/** (1 - alpha) · image + alpha · mask per channel, rounded; alpha in [0, 1]. */
export const overlay = (imageRgb: Uint8Array, maskRgb: Uint8Array, alpha: number): Uint8Array => {
  if (imageRgb.length !== maskRgb.length) {
    throw metricsInputError(
      "overlay",
      "maskRgb",
      `has ${maskRgb.length} bytes but imageRgb has ${imageRgb.length}`,
    );
  }
  if (!(alpha >= 0 && alpha <= 1)) {
    throw metricsInputError("overlay", "alpha", `must be in [0, 1], got ${alpha}`);
  }
  const out = new Uint8Array(imageRgb.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round((1 - alpha) * imageRgb[i] + alpha * maskRgb[i]);
  return out;
};
