/**
 * Window tiling for sliding-window inference (mmsegmentation's `slide_inference` grid).
 */

/** One inference window: rows `y0..y1-1`, columns `x0..x1-1`. */
export interface Window {
  readonly y0: number;
  readonly x0: number;
  readonly y1: number;
  readonly x1: number;
}

/**
 * The windows covering a `height`×`width` image with `crop` = [h, w] windows every `stride` = [h, w]
 * pixels, row by row.
 *
 * Gotcha: the last window of a row/column is shifted back to end at the border (never padded), so windows
 * can overlap more than the stride implies; an image smaller than the crop gives one window the image's
 * size.
 */
export const slideWindows = (
  height: number,
  width: number,
  crop: readonly [number, number],
  stride: readonly [number, number],
): Window[] => {
  const [ch, cw] = crop, [sh, sw] = stride;
  if (!(ch > 0 && cw > 0 && sh > 0 && sw > 0)) {
    throw new RangeError(`crop ${crop} and stride ${stride} must be positive`);
  }
  const rows = Math.floor(Math.max(height - ch + sh - 1, 0) / sh) + 1;
  const cols = Math.floor(Math.max(width - cw + sw - 1, 0) / sw) + 1;
  const windows: Window[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const y1 = Math.min(r * sh + ch, height), x1 = Math.min(c * sw + cw, width);
      windows.push({ y0: Math.max(y1 - ch, 0), x0: Math.max(x1 - cw, 0), y1, x1 });
    }
  }
  return windows;
};
