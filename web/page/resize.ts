/**
 * libvips' resize of 8-bit RGB images, in plain TypeScript, so that the page fits a photo to the export
 * size with the same bytes as `predict --export-size` (sharp's `resize(w, h, { kernel: "linear", fit:
 * "fill" })` in data/resize.ts, libvips 8.18).
 *
 * Downsizing (what photos need) follows libvips' `vips_resize` step by step, with its integer
 * arithmetic: per axis, vertical first, `vips_reducev` then `vips_reduceh`, each of which first box-
 * shrinks by the integer part of (input / output / 2) (`gap` 2: `vips_shrinkv` / `vips_shrinkh` with
 * `ceil`) and then convolves with a triangle kernel stretched over the residual factor, its coefficients
 * tabulated at 1/64 pixel, scaled to 12-bit fixed point (truncated), summed with rounding and clipped.
 * Edges repeat the border pixel. A test compares it with sharp on CamVid frames, byte by byte.
 *
 * Enlarging (an image smaller than the export size) uses a centre-aligned bilinear interpolation with
 * libvips' 12-bit fixed-point weights; libvips enlarges through `vips_affine`, whose edge handling this
 * does not copy, so enlarged images may differ from sharp's by a gray level here and there.
 */

/** libvips' tabulation of kernel positions: 1/64 pixel (VIPS_TRANSFORM_SCALE). */
const TRANSFORM_SCALE = 64;
/** 12-bit fixed-point coefficients (VIPS_INTERPOLATE_SCALE). */
const INTERPOLATE_SHIFT = 12;
const INTERPOLATE_SCALE = 1 << INTERPOLATE_SHIFT;

/** C's rint: round half to even. */
const rint = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** A plane of bytes: `bands` interleaved channels, `width` pixels per row. */
interface Plane {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly bands: number;
}

/** Transposes rows and columns, so that one routine reduces both axes. */
const transpose = ({ data, width, height, bands }: Plane): Plane => {
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * bands, to = (x * height + y) * bands;
      for (let b = 0; b < bands; b++) out[to + b] = data[from + b];
    }
  }
  return { data: out, width: height, height: width, bands };
};

/**
 * `vips_shrinkh` with `ceil` on uchar: averages runs of `factor` pixels along each row; the last run
 * repeats the edge pixel. Output width ⌈width / factor⌉.
 */
const shrinkRows = (p: Plane, factor: number): Plane => {
  const width = Math.ceil(p.width / factor);
  const out = new Uint8Array(width * p.height * p.bands);
  // libvips' fixed-point division: ((sum + factor/2) · ⌊2^32 / (256 · factor)⌋ mod 2^32) >> 24.
  const multiplier = Math.floor(2 ** 32 / (256 * factor));
  const amend = Math.floor(factor / 2);
  for (let y = 0; y < p.height; y++) {
    for (let x = 0; x < width; x++) {
      for (let b = 0; b < p.bands; b++) {
        let sum = amend;
        for (let i = 0; i < factor; i++) {
          const sx = Math.min(x * factor + i, p.width - 1);
          sum += p.data[(y * p.width + sx) * p.bands + b];
        }
        out[(y * width + x) * p.bands + b] = Math.imul(sum, multiplier) >>> 24;
      }
    }
  }
  return { data: out, width, height: p.height, bands: p.bands };
};

/** The triangle kernel's coefficients at sub-pixel offset `x` (libvips' calculate_coefficients). */
const triangleMask = (points: number, shrink: number, x: number): Int16Array => {
  const half = x + points / 2 - 1;
  const c = new Float64Array(points);
  let sum = 0;
  for (let i = 0; i < points; i++) {
    const t = Math.abs((i - half) / shrink);
    c[i] = t < 1 ? 1 - t : 0;
    sum += c[i];
  }
  // (short)(c / sum · 4096): truncation toward zero, as libvips' cast does.
  return Int16Array.from(c, (v) => Math.trunc((v / sum) * INTERPOLATE_SCALE));
};

/**
 * `vips_reduceh` on uchar with the linear kernel: reduces each row from `p.width` to `width` pixels.
 * `factor` is the requested input/output ratio of this axis (before the integer shrink).
 */
const reduceRows = (p0: Plane, width: number, factor: number): Plane => {
  let p = p0;
  let extra = width * factor - p.width;
  let residual = factor;
  const shrink = Math.max(1, Math.floor(p.width / width / 2));
  if (shrink > 1) {
    p = shrinkRows(p, shrink);
    residual /= shrink;
    extra /= shrink;
  }
  if (residual === 1) return p;
  const points = 2 * rint(residual) + 1;
  const offset = (1 + extra) / 2 - 1;
  const masks = Array.from(
    { length: TRANSFORM_SCALE + 1 },
    (_, i) => triangleMask(points, residual, Math.fround(i / TRANSFORM_SCALE)),
  );
  // The input is embedded with ⌈points/2⌉ − 1 copies of the edge pixel on the left (and enough on the right).
  const left = Math.ceil(points / 2) - 1;
  const out = new Uint8Array(width * p.height * p.bands);
  for (let y = 0; y < p.height; y++) {
    const row = y * p.width;
    let X = 0.5 * residual - 0.5 - offset;
    for (let x = 0; x < width; x++) {
      const ix = Math.trunc(X);
      const sx = Math.trunc(X * TRANSFORM_SCALE * 2);
      const mask = masks[((sx & (TRANSFORM_SCALE * 2 - 1)) + 1) >> 1];
      for (let b = 0; b < p.bands; b++) {
        let sum = INTERPOLATE_SCALE >> 1;
        for (let i = 0; i < points; i++) {
          const sxi = Math.min(Math.max(ix + i - left, 0), p.width - 1);
          sum += mask[i] * p.data[(row + sxi) * p.bands + b];
        }
        out[(y * width + x) * p.bands + b] = Math.min(255, Math.max(0, sum >> INTERPOLATE_SHIFT));
      }
      X += residual;
    }
  }
  return { data: out, width, height: p.height, bands: p.bands };
};

/**
 * libvips' `vips_affine` enlargement with its bilinear interpolator on uchar: output pixel (X, Y) reads the
 * input at (X / a - 1/2, Y / d - 1/2) (vips_resize's displacement of 1/2), edges repeating the border
 * pixel, with 12-bit fixed-point weights. `a` and `d` are the horizontal and vertical scales (1 for an axis
 * that is not enlarged: libvips then still reads it at Y - 1/2).
 */
const affineEnlarge = (p: Plane, width: number, height: number, a: number, d: number): Plane => {
  // vips__transform_calc_inverse of the diagonal matrix [a 0; 0 d].
  const tmp = 1 / (a * d);
  const ia = tmp * d, id = tmp * a;
  const out = new Uint8Array(width * height * p.bands);
  const clampX = (i: number) => Math.min(Math.max(i - 1, 0), p.width - 1);
  const clampY = (i: number) => Math.min(Math.max(i - 1, 0), p.height - 1);
  for (let y = 0; y < height; y++) {
    // Coordinates in the input embedded with a one-pixel border (hence + 1 - 1/2 = + 1/2).
    const iy = id * y + 0.5;
    const fy = Math.trunc(iy);
    const Yw = Math.trunc((iy - fy) * INTERPOLATE_SCALE);
    const Yd = INTERPOLATE_SCALE - Yw;
    const r1 = clampY(fy) * p.width, r2 = clampY(fy + 1) * p.width;
    // Along a row libvips adds 1/a pixel by pixel (from the left of the region it computes).
    let ix = 0.5;
    for (let x = 0; x < width; x++, ix += ia) {
      const fx = Math.trunc(ix);
      const Xw = Math.trunc((ix - fx) * INTERPOLATE_SCALE);
      const c4 = (Yw * Xw) >> INTERPOLATE_SHIFT;
      const c2 = (Yd * Xw) >> INTERPOLATE_SHIFT;
      const c3 = Yw - c4;
      const c1 = Yd - c2;
      const x1 = clampX(fx), x2 = clampX(fx + 1);
      for (let b = 0; b < p.bands; b++) {
        const v = c1 * p.data[(r1 + x1) * p.bands + b] + c2 * p.data[(r1 + x2) * p.bands + b] +
          c3 * p.data[(r2 + x1) * p.bands + b] + c4 * p.data[(r2 + x2) * p.bands + b];
        out[(y * width + x) * p.bands + b] = (v + (INTERPOLATE_SCALE >> 1)) >> INTERPOLATE_SHIFT;
      }
    }
  }
  return { data: out, width, height, bands: p.bands };
};

/**
 * Resizes packed 8-bit RGB (HWC) from `height`×`width` to `toHeight`×`toWidth`, as sharp's
 * `resize(toWidth, toHeight, { kernel: "linear", fit: "fill" })` does; returns the input when sizes agree.
 */
export const resizeRgb = (
  image: Uint8Array,
  height: number,
  width: number,
  toHeight: number,
  toWidth: number,
): Uint8Array => {
  if (height === toHeight && width === toWidth) return image;
  // sharp asks libvips for the scale 1 / (input / target) of each axis; vips_resize reduces the axes
  // that shrink (vertical first) and enlarges the rest with one affine transform.
  const hScale = 1 / (width / toWidth);
  const vScale = 1 / (height / toHeight);
  let plane: Plane = { data: image, width, height, bands: 3 };
  if (vScale < 1) plane = transpose(reduceRows(transpose(plane), toHeight, 1 / vScale));
  if (hScale < 1) plane = reduceRows(plane, toWidth, 1 / hScale);
  if (hScale > 1 || vScale > 1) {
    plane = affineEnlarge(plane, toWidth, toHeight, hScale > 1 ? hScale : 1, vScale > 1 ? vScale : 1);
  }
  return plane.data;
};
