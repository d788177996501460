/**
 * How the page feeds a photo to a kappa export and maps the classes back: the rule in the export's
 * metadata (`kappa.preprocess` / `kappa.postprocess`, written by eval/export_size.ts and followed by
 * `predict --export-size`): fit inside H×W keeping the aspect ratio (libvips' resize, resize.ts), normalize
 * (x − mean) / std, pad bottom/right with 0, run, keep the fitted region and map it back by nearest
 * neighbour, centre-aligned. Tests compare each step with kappa's own functions.
 */
import { resizeRgb } from "./resize.ts";

/** What a kappa export says about itself in `metadata_props`. */
export interface ExportInfo {
  readonly experiment: string;
  readonly height: number;
  readonly width: number;
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly classes: number;
  /** From `kappa.class_names` when the export has them, else `class_<c>`. */
  readonly classNames: readonly string[];
}

const REQUIRED = ["kappa.input_height", "kappa.input_width", "kappa.mean", "kappa.std", "kappa.classes"];

/** The export's facts, or a line saying why `file` is not a kappa export. */
export const exportInfo = (
  metadata: Readonly<Record<string, string>>,
  file: string,
): ExportInfo | { readonly error: string } => {
  const missing = REQUIRED.filter((k) => !(k in metadata));
  if (missing.length > 0) {
    return {
      error: `${file}: not a kappa export: its metadata_props have no ${missing.join(", ")} ` +
        "(write one with npx --yes deno@2.9.6 task export <run> model.onnx)",
    };
  }
  const numbers = (key: string, count: number) => {
    const v = metadata[key].split(",").map(Number);
    return v.length === count && v.every(Number.isFinite) ? v : undefined;
  };
  const [height, width, classes] = ["kappa.input_height", "kappa.input_width", "kappa.classes"].map((k) =>
    Number(metadata[k])
  );
  const mean = numbers("kappa.mean", 3), std = numbers("kappa.std", 3);
  const bad = [
    !(Number.isInteger(height) && height > 0) && "kappa.input_height",
    !(Number.isInteger(width) && width > 0) && "kappa.input_width",
    !(Number.isInteger(classes) && classes > 0) && "kappa.classes",
    !mean && "kappa.mean",
    !std && "kappa.std",
  ].filter(Boolean);
  if (bad.length > 0) return { error: `${file}: kappa export with unreadable metadata: ${bad.join(", ")}` };
  let names: string[] | undefined;
  try {
    const parsed = metadata["kappa.class_names"] ? JSON.parse(metadata["kappa.class_names"]) : undefined;
    if (Array.isArray(parsed) && parsed.length === classes) names = parsed.map(String);
  } catch {
    names = undefined;
  }
  return {
    experiment: metadata["kappa.experiment"] ?? "(unnamed)",
    height,
    width,
    mean: mean!,
    std: std!,
    classes,
    classNames: names ?? Array.from({ length: classes }, (_, c) => `class_${c}`),
  };
};

/** h×w = round(H0·f)×round(W0·f), f = min(H/H0, W/W0), rounding half up (eval/export_size.ts's fitSize). */
export const fitSize = (
  height: number,
  width: number,
  [toHeight, toWidth]: readonly [number, number],
): [number, number] => {
  const f = Math.min(toHeight / height, toWidth / width);
  return [Math.max(1, Math.trunc(height * f + 0.5)), Math.max(1, Math.trunc(width * f + 0.5))];
};

/** The model's input [1, 3, H, W] for packed RGB `rgb` of height×width, and the fitted region h×w in it. */
export const exportInput = (
  rgb: Uint8Array,
  height: number,
  width: number,
  info: ExportInfo,
): { readonly images: Float32Array; readonly fitted: readonly [number, number] } => {
  const [h, w] = fitSize(height, width, [info.height, info.width]);
  const resized = resizeRgb(rgb, height, width, h, w);
  const plane = info.height * info.width;
  const images = new Float32Array(3 * plane); // 0 padding, in normalized units
  for (let c = 0; c < 3; c++) {
    const m = info.mean[c], inv = 1 / info.std[c];
    for (let y = 0; y < h; y++) {
      const o = c * plane + y * info.width;
      for (let x = 0, i = y * w * 3 + c; x < w; x++, i += 3) images[o + x] = (resized[i] - m) * inv;
    }
  }
  return { images, fitted: [h, w] };
};

/**
 * The classes of the fitted h×w region of an H×W class map, at the photo's size by nearest neighbour:
 * row y reads ⌊(y + ½)·h / H0⌋, column x reads ⌊(x + ½)·w / W0⌋.
 */
export const mapBack = (
  classes: ArrayLike<number | bigint>,
  exportWidth: number,
  [h, w]: readonly [number, number],
  [height, width]: readonly [number, number],
): Int32Array => {
  const cols = new Int32Array(width);
  for (let x = 0; x < width; x++) cols[x] = Math.min(w - 1, Math.floor(((x + 0.5) * w) / width));
  const out = new Int32Array(height * width);
  for (let y = 0; y < height; y++) {
    const row = Math.min(h - 1, Math.floor(((y + 0.5) * h) / height)) * exportWidth;
    for (let x = 0; x < width; x++) out[y * width + x] = Number(classes[row + cols[x]]);
  }
  return out;
};

/** Pixels per class of a class map, and the classes present, most pixels first. */
export const classShares = (
  classes: Int32Array,
  classCount: number,
): { readonly counts: Int32Array; readonly present: readonly number[] } => {
  const counts = new Int32Array(classCount);
  for (const c of classes) if (c >= 0 && c < classCount) counts[c]++;
  const present = [...counts.keys()].filter((c) => counts[c] > 0).sort((a, b) =>
    counts[b] - counts[a] || a - b
  );
  return { counts, present };
};
