/**
 * A procedural (synthetic) dataset: scenes of textured shapes over a textured background, with any number
 * of classes up to 21,841 and only a few classes per image.
 *
 * It exists for tests and for large-vocabulary timing; it is clearly synthetic and must never be used to
 * report accuracy. Everything is a pure function of the spec's seed, the split and the image index.
 * A class's texture (colors, pattern, frequency, angle) depends only on the seed and the class id, so the
 * same class looks the same in every image. Shape boundaries get a one-pixel ignore rim, as in VOC.
 */
import { Effect } from "effect";
import { random } from "../core/random.ts";
import { DEFAULT_IGNORE_INDEX } from "./classes.ts";
import type { Dataset, LabeledImage, SampleRef } from "./dataset.ts";
import { type DataError, InvalidConfig } from "./errors.ts";
import { buildLabelMapping, type SourceLabels } from "./labels.ts";
import type { ProceduralSpec } from "../dsl/dataset.ts";

const SCENE = 0x5343454e; // "SCEN": per-image stream
const LOOK = 0x4c4f4f4b; // "LOOK": per-class appearance stream
const SPLITS = ["train", "val", "test"] as const;

/** The synthetic class names: `synthetic-00000` … */
export const proceduralNames = (numClasses: number): string[] =>
  Array.from({ length: numClasses }, (_, k) => `synthetic-${String(k).padStart(5, "0")}`);

/** The default ignore index: 255, or 65535 once 255 would be a class id. */
export const proceduralIgnore = (numClasses: number): number =>
  numClasses < DEFAULT_IGNORE_INDEX ? DEFAULT_IGNORE_INDEX : 65535;

interface Look {
  readonly a: readonly [number, number, number];
  readonly b: readonly [number, number, number];
  readonly pattern: number; // 0 stripes, 1 checker, 2 rings, 3 flat with grain
  readonly period: number;
  readonly cos: number;
  readonly sin: number;
}

const lookOf = (seed: number, k: number): Look => {
  const r = random(seed, LOOK, k);
  const color = () => [r.int(256), r.int(256), r.int(256)] as const;
  const angle = r.uniform() * Math.PI;
  return {
    a: color(),
    b: color(),
    pattern: r.int(4),
    period: 3 + r.int(14),
    cos: Math.cos(angle),
    sin: Math.sin(angle),
  };
};

/** Texture weight in [0, 1] of the class pattern at pixel (x, y). */
const textureAt = (look: Look, x: number, y: number, grain: number): number => {
  const u = x * look.cos + y * look.sin;
  switch (look.pattern) {
    case 0:
      return (Math.floor(u / look.period) & 1) === 0 ? 0.15 : 0.85;
    case 1:
      return ((Math.floor(x / look.period) + Math.floor(y / look.period)) & 1) === 0 ? 0.2 : 0.8;
    case 2:
      return 0.5 + 0.45 * Math.sin(Math.hypot(x, y) / look.period * 2);
    default:
      return grain;
  }
};

/**
 * Generates image `index` of `split`: picks 1..classesPerImage distinct classes (the first is the
 * background), paints 1–2 ellipses, rectangles or triangles per other class, textures every pixel by its
 * class, and sets shape boundaries to ignore.
 */
export const generateScene = (spec: ProceduralSpec, split: number, index: number, ignoreIndex: number) => {
  const { width: w, height: h, numClasses } = spec;
  const rng = random(spec.seed, SCENE, split, index);
  const count = Math.min(numClasses, 1 + rng.int(spec.classesPerImage));
  const classes: number[] = [];
  while (classes.length < count) {
    const k = rng.int(numClasses);
    if (!classes.includes(k)) classes.push(k);
  }
  const labels = new Int32Array(w * h).fill(classes[0]);
  const shapeOf = new Int32Array(w * h); // which shape painted the pixel (0 = background), for the rims
  let shape = 0;
  for (const k of classes.slice(1)) {
    const copies = 1 + rng.int(2);
    for (let c = 0; c < copies; c++) {
      shape++;
      const kind = rng.int(3);
      const cx = rng.uniform() * w, cy = rng.uniform() * h;
      const rx = (0.1 + 0.25 * rng.uniform()) * w, ry = (0.1 + 0.25 * rng.uniform()) * h;
      const x0 = Math.max(0, Math.floor(cx - rx)), x1 = Math.min(w - 1, Math.ceil(cx + rx));
      const y0 = Math.max(0, Math.floor(cy - ry)), y1 = Math.min(h - 1, Math.ceil(cy + ry));
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) {
          const dx = (x + 0.5 - cx) / rx, dy = (y + 0.5 - cy) / ry;
          const inside = kind === 0
            ? dx * dx + dy * dy <= 1
            : kind === 1
            ? Math.abs(dx) <= 1 && Math.abs(dy) <= 1
            : dy <= 1 && Math.abs(dx) <= (dy + 1) / 2;
          if (inside) {
            labels[y * w + x] = k;
            shapeOf[y * w + x] = shape;
          }
        }
      }
    }
  }
  const looks = new Map(classes.map((k) => [k, lookOf(spec.seed, k)]));
  const image = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      const look = looks.get(labels[p])!;
      const t = textureAt(look, x, y, rng.uniform());
      const noise = (rng.uniform() - 0.5) * 24;
      for (let ch = 0; ch < 3; ch++) {
        const v = look.a[ch] * (1 - t) + look.b[ch] * t + noise;
        image[p * 3 + ch] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
      }
    }
  }
  // One-pixel ignore rim wherever the painting shape changes to the right or below.
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = y * w + x;
      if ((x + 1 < w && shapeOf[p] !== shapeOf[p + 1]) || (y + 1 < h && shapeOf[p] !== shapeOf[p + w])) {
        labels[p] = ignoreIndex;
      }
    }
  }
  return { image, labels };
};

/**
 * Source classes of a procedural dataset. Generated labels are already class ids, so the lookup table is
 * the identity on 0..K-1 (it is indexed by class id, up to 21,841, not by an 8/16-bit raw value).
 */
const proceduralSourceLabels = (spec: ProceduralSpec, ignoreIndex: number): SourceLabels => {
  const names = proceduralNames(spec.numClasses);
  return {
    names,
    colors: names.map((_, k) => lookOf(spec.seed, k).a),
    ignoreIndex,
    rawToSource: Int32Array.from({ length: spec.numClasses }, (_, k) => k),
    invalidHint: "is not a synthetic class id",
  };
};

/** Maps generated class ids through the spec's classMap/subset (identity when neither is given). */
const remap = (labels: Int32Array, sourceToOut: Int32Array | undefined, ignoreIndex: number) => {
  if (sourceToOut === undefined) return labels;
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    labels[i] = v === ignoreIndex ? ignoreIndex : sourceToOut[v];
  }
  return labels;
};

/** Opens one split (`train`, `val` or `test`) of a procedural dataset. */
export const openProcedural = (
  spec: ProceduralSpec,
  split: string,
  specFile: string,
): Effect.Effect<Dataset, DataError> =>
  Effect.gen(function* () {
    const splitIndex = SPLITS.indexOf(split as typeof SPLITS[number]);
    if (splitIndex < 0) {
      return yield* Effect.fail(
        new InvalidConfig({
          file: specFile,
          message: `procedural split "${split}" does not exist (train, val, test)`,
        }),
      );
    }
    const ignore = spec.ignoreIndex ?? proceduralIgnore(spec.numClasses);
    const source = proceduralSourceLabels(spec, ignore);
    const identity = spec.classMap === undefined && spec.subset === undefined;
    const mapping = yield* buildLabelMapping(source, { ...spec, ignoreIndex: ignore }, specFile);
    const sourceToOut = identity ? undefined : mapping.lut;
    const samples: SampleRef[] = Array.from({ length: spec.count }, (_, i) => {
      const id = `${spec.name}-${split}-${String(i).padStart(6, "0")}`;
      return { id, image: `procedural:${id}`, mask: `procedural:${id}` };
    });
    return {
      spec,
      name: spec.name,
      split,
      imageCount: spec.count,
      classes: mapping.classes,
      mapping,
      samples,
      problems: [],
      read: (sample) =>
        Effect.sync((): LabeledImage => {
          const index = Number(sample.id.slice(sample.id.lastIndexOf("-") + 1));
          const { image, labels } = generateScene(spec, splitIndex, index, ignore);
          return {
            id: sample.id,
            width: spec.width,
            height: spec.height,
            image,
            labels: remap(labels, sourceToOut, mapping.classes.ignoreIndex),
          };
        }),
    };
  });
