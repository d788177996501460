/**
 * Normalization to the network's input layout and padding to a fixed size.
 *
 * Images become float NCHW planes `(x - mean) / std` (RGB order), placed top-left in an `outHeight`×
 * `outWidth` canvas whose remaining area holds `padValue` — mmsegmentation pads after normalizing, so its
 * 0 padding is 0 in normalized units. Label maps are padded with the ignore index.
 */

/** HWC 8-bit RGB → normalized CHW float32, padded bottom/right to `outHeight`×`outWidth`. */
export const normalizeRgb = (
  image: Uint8Array,
  height: number,
  width: number,
  mean: readonly number[],
  std: readonly number[],
  outHeight = height,
  outWidth = width,
  padValue = 0,
): Float32Array => {
  const plane = outHeight * outWidth;
  const out = new Float32Array(3 * plane);
  if (outHeight !== height || outWidth !== width) out.fill(padValue);
  for (let c = 0; c < 3; c++) {
    const m = mean[c], inv = 1 / std[c];
    const base = c * plane;
    for (let y = 0; y < height; y++) {
      const o = base + y * outWidth;
      for (let x = 0, i = y * width * 3 + c; x < width; x++, i += 3) out[o + x] = (image[i] - m) * inv;
    }
  }
  return out;
};

/** Pads a label map bottom/right to `outHeight`×`outWidth` with `ignoreIndex`. */
export const padLabels = (
  labels: Int32Array,
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
  ignoreIndex: number,
): Int32Array => {
  if (outHeight === height && outWidth === width) return labels;
  const out = new Int32Array(outHeight * outWidth).fill(ignoreIndex);
  for (let y = 0; y < height; y++) out.set(labels.subarray(y * width, (y + 1) * width), y * outWidth);
  return out;
};
