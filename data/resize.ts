/**
 * Resizing: keep-ratio target sizes (mmcv's `rescale_size`), bilinear image resizing with sharp, and
 * nearest-neighbour label resizing.
 *
 * Gotcha: label maps are resized here in TypeScript rather than by libvips, because sharp's raw input is
 * 8 bits per band in practice while training ids go up to 21,840 (plus a 16-bit ignore value), and
 * nearest-neighbour is pure index arithmetic that must never invent a label. Source pixel for output x is
 * `floor((x + 0.5) · in / out)` (centre-aligned, like libvips' nearest).
 */
import { Effect } from "effect";
import sharp from "sharp";

/**
 * The size an image of `height`×`width` is resized to so that its long edge fits `scale[0]` and its short
 * edge fits `scale[1]` (in either order), keeping the aspect ratio: mmcv's `rescale_size` with
 * `int(x · factor + 0.5)` rounding. Returns [height, width].
 */
export const rescaleSize = (
  height: number,
  width: number,
  scale: readonly [number, number],
): [number, number] => {
  const factor = Math.min(
    Math.max(scale[0], scale[1]) / Math.max(height, width),
    Math.min(scale[0], scale[1]) / Math.min(height, width),
  );
  return [Math.max(1, Math.trunc(height * factor + 0.5)), Math.max(1, Math.trunc(width * factor + 0.5))];
};

/** Resizes an 8-bit RGB (HWC) image with libvips' bilinear kernel; returns the input when sizes agree. */
export const resizeRgb = (
  image: Uint8Array,
  height: number,
  width: number,
  toHeight: number,
  toWidth: number,
): Effect.Effect<Uint8Array> =>
  height === toHeight && width === toWidth ? Effect.succeed(image) : Effect.promise(async () => {
    const out = await sharp(image, { raw: { width, height, channels: 3 } })
      .resize(toWidth, toHeight, { kernel: "linear", fit: "fill" })
      .raw()
      .toBuffer();
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  });

/** Nearest-neighbour resize of a label map (any int values); returns the input when sizes agree. */
export const resizeLabels = (
  labels: Int32Array,
  height: number,
  width: number,
  toHeight: number,
  toWidth: number,
): Int32Array => {
  if (height === toHeight && width === toWidth) return labels;
  const cols = new Int32Array(toWidth);
  for (let x = 0; x < toWidth; x++) cols[x] = Math.min(width - 1, Math.floor(((x + 0.5) * width) / toWidth));
  const out = new Int32Array(toHeight * toWidth);
  for (let y = 0; y < toHeight; y++) {
    const row = Math.min(height - 1, Math.floor(((y + 0.5) * height) / toHeight)) * width;
    const o = y * toWidth;
    for (let x = 0; x < toWidth; x++) out[o + x] = labels[row + cols[x]];
  }
  return out;
};

/**
 * Resizes an 8-bit RGB (HWC) image bilinearly to `toHeight`×`toWidth` and returns only `box` of the result.
 *
 * libvips computes images on demand, so only the pixels inside the box are interpolated — the same bytes as
 * resizing the whole image and cropping, at a fraction of the cost when the crop is small.
 */
export const resizeCropRgb = (
  image: Uint8Array,
  height: number,
  width: number,
  toHeight: number,
  toWidth: number,
  box: { readonly y0: number; readonly x0: number; readonly y1: number; readonly x1: number },
): Effect.Effect<Uint8Array> =>
  Effect.promise(async () => {
    let pipeline = sharp(image, { raw: { width, height, channels: 3 } });
    if (height !== toHeight || width !== toWidth) {
      pipeline = pipeline.resize(toWidth, toHeight, { kernel: "linear", fit: "fill" });
    }
    const out = await pipeline
      .extract({ left: box.x0, top: box.y0, width: box.x1 - box.x0, height: box.y1 - box.y0 })
      .raw()
      .toBuffer();
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  });

/**
 * The evaluation crop of ImageNet classifiers: the central `fraction` of each side (TensorFlow's
 * `central_crop`: the border is ⌊(n − n·fraction) / 2⌋ pixels on each side), resized bilinearly to
 * `toHeight`×`toWidth`. Returns HWC 8-bit RGB.
 */
export const centralCropResizeRgb = (
  image: Uint8Array,
  height: number,
  width: number,
  fraction: number,
  toHeight: number,
  toWidth: number,
): Effect.Effect<Uint8Array> =>
  Effect.promise(async () => {
    const top = Math.floor((height - height * fraction) / 2),
      left = Math.floor((width - width * fraction) / 2);
    const out = await sharp(image, { raw: { width, height, channels: 3 } })
      .extract({ left, top, width: width - 2 * left, height: height - 2 * top })
      .resize(toWidth, toHeight, { kernel: "linear", fit: "fill" })
      .raw()
      .toBuffer();
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  });
