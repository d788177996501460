/**
 * mmsegmentation's `PhotoMetricDistortion` on 8-bit RGB images: random brightness, contrast (before or
 * after the colour changes, chosen at random), saturation and hue.
 *
 * Each step happens with probability 1/2, with mmsegmentation's ranges: brightness delta ±32, contrast and
 * saturation factors in [0.5, 1.5], hue shift in [-18, 18) OpenCV hue units (2° each). Values are clipped
 * to 0..255 and truncated to integers after each step, as mmsegmentation's `convert` does.
 *
 * Gotcha: mmsegmentation converts to HSV and back once for saturation and once more for hue; here both are
 * applied in a single HSV round trip (same distribution, one fewer 8-bit quantization).
 */
import type { Random } from "../core/random.ts";

/** The random choices of one distortion, drawn in mmsegmentation's order. */
export interface Distortion {
  readonly brightness: number | null;
  readonly contrastFirst: boolean;
  readonly contrast: number | null;
  readonly saturation: number | null;
  readonly hue: number | null;
}

const uniform = (rng: Random, lo: number, hi: number) => lo + (hi - lo) * rng.uniform();

/** Draws a distortion: brightness, mode, contrast, saturation, hue — one coin (then a value) each. */
export const drawDistortion = (rng: Random): Distortion => {
  const brightness = rng.int(2) === 1 ? uniform(rng, -32, 32) : null;
  const contrastFirst = rng.int(2) === 1;
  const contrast = rng.int(2) === 1 ? uniform(rng, 0.5, 1.5) : null;
  const saturation = rng.int(2) === 1 ? uniform(rng, 0.5, 1.5) : null;
  const hue = rng.int(2) === 1 ? rng.int(36) - 18 : null;
  return { brightness, contrastFirst, contrast, saturation, hue };
};

/** The table of `clip(x · alpha + beta, 0, 255)` truncated to an integer, for x = 0..255. */
const convertTable = (alpha: number, beta: number): Uint8Array => {
  const table = new Uint8Array(256);
  for (let x = 0; x < 256; x++) {
    const v = x * alpha + beta;
    table[x] = v <= 0 ? 0 : v >= 255 ? 255 : v; // Uint8Array stores truncate
  }
  return table;
};

/** The identity table, the start of a composition. */
const identityTable = () => Uint8Array.from({ length: 256 }, (_, x) => x);

/** Maps every value through `table`, in place. */
const applyTable = (data: Uint8Array, table: Uint8Array) => {
  for (let i = 0; i < data.length; i++) data[i] = table[data[i]];
};

/** Scales saturation by `sat` and shifts hue by `hue` OpenCV units (2° each), in place on RGB pixels. */
const adjustHsv = (data: Uint8Array, sat: number, hue: number) => {
  const shift = hue * 2; // degrees
  for (let i = 0; i < data.length; i += 3) {
    const r = data[i], g = data[i + 1], b = data[i + 2];
    const v = r > g ? (r > b ? r : b) : (g > b ? g : b);
    if (v === 0) continue; // black stays black whatever its (undefined) hue and saturation
    const min = r < g ? (r < b ? r : b) : (g < b ? g : b);
    const diff = v - min;
    let h = 0;
    if (diff > 0) {
      h = v === r
        ? (60 * (g - b)) / diff
        : v === g
        ? 120 + (60 * (b - r)) / diff
        : 240 + (60 * (r - g)) / diff;
    }
    // Saturation goes through 8 bits like mmsegmentation's uint8 HSV image: truncate after scaling.
    const s8 = Math.trunc(Math.round((diff / v) * 255) * sat);
    const s = (s8 > 255 ? 255 : s8) / 255;
    h += shift;
    h = h < 0 ? h + 360 : h >= 360 ? h - 360 : h;
    if (h < 0 || h >= 360) h = ((h % 360) + 360) % 360;
    const c = v * s;
    const hh = h / 60;
    const sector = Math.trunc(hh);
    const x = c * (1 - Math.abs((hh % 2) - 1));
    const m = v - c;
    const cm = Math.round(c + m), xm = Math.round(x + m), mm = Math.round(m);
    switch (sector) {
      case 0:
        data[i] = cm, data[i + 1] = xm, data[i + 2] = mm;
        break;
      case 1:
        data[i] = xm, data[i + 1] = cm, data[i + 2] = mm;
        break;
      case 2:
        data[i] = mm, data[i + 1] = cm, data[i + 2] = xm;
        break;
      case 3:
        data[i] = mm, data[i + 1] = xm, data[i + 2] = cm;
        break;
      case 4:
        data[i] = xm, data[i + 1] = mm, data[i + 2] = cm;
        break;
      default:
        data[i] = cm, data[i + 1] = mm, data[i + 2] = xm;
    }
  }
};

/** Applies a drawn distortion to an RGB (HWC) image, in place; returns the same array. */
export const applyDistortion = (data: Uint8Array, d: Distortion): Uint8Array => {
  // Brightness and an early contrast are per-value maps: compose their tables and apply them in one pass.
  let before: Uint8Array | null = null;
  if (d.brightness !== null) before = convertTable(1, d.brightness);
  if (d.contrastFirst && d.contrast !== null) {
    const contrast = convertTable(d.contrast, 0);
    before = (before ?? identityTable()).map((v) => contrast[v]);
  }
  if (before !== null) applyTable(data, before);
  if (d.saturation !== null || d.hue !== null) adjustHsv(data, d.saturation ?? 1, d.hue ?? 0);
  if (!d.contrastFirst && d.contrast !== null) applyTable(data, convertTable(d.contrast, 0));
  return data;
};
