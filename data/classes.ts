/**
 * Class tables: the names, display colors and ignore index of a dataset's training classes.
 *
 * Training ids are contiguous `0..K-1` in table order; `ignoreIndex` is the label value of pixels that carry
 * no class. Gotcha: for K ≥ 255 the usual 255 is itself a class id, so the ignore index must be chosen
 * outside `0..K-1` (validated here, never silently wrapped).
 */
import { Effect, Schema } from "effect";
import { decodeConfig, InvalidConfig } from "../dsl/decode.ts";
import { InlineClassTable, MAX_CLASSES, RgbSchema } from "../dsl/dataset.ts";
import { readJson } from "./config_file.ts";

/** An RGB display color. */
export type Rgb = readonly [number, number, number];

/** The training classes of a dataset: training id `k` is `names[k]`. */
export interface ClassTable {
  readonly names: readonly string[];
  readonly colors: readonly Rgb[];
  readonly ignoreIndex: number;
  /** Per class: whether it is a countable "thing" (COCO panoptic); absent for semantic-only datasets. */
  readonly isThing?: readonly boolean[];
}

/** The default ignore index (mmsegmentation's). */
export const DEFAULT_IGNORE_INDEX = 255;

/**
 * Schema of a classes file in the mmsegmentation/camvid style:
 * `{ "ignore_index": 11, "classes": [{ "id": 0, "name": "sky", "color": [128, 128, 128] }, ...] }`.
 */
export const ClassesFile = Schema.Struct({
  ignore_index: Schema.optionalKey(Schema.Int),
  classes: Schema.Array(Schema.Struct({
    id: Schema.Int,
    name: Schema.String,
    color: Schema.optionalKey(RgbSchema),
  })).check(Schema.isMinLength(1)),
});

/** A deterministic, well-spread color for class `k` when a table gives none (golden-angle hues). */
export const defaultColor = (k: number): Rgb => {
  const hue = (k * 137.508) % 360;
  const light = 0.45 + 0.2 * ((k * 7) % 3) / 2;
  const c = (1 - Math.abs(2 * light - 1)) * 0.75;
  const x = c * (1 - Math.abs(((hue / 60) % 2) - 1));
  const m = light - c / 2;
  const [r, g, b] = hue < 60
    ? [c, x, 0]
    : hue < 120
    ? [x, c, 0]
    : hue < 180
    ? [0, c, x]
    : hue < 240
    ? [0, x, c]
    : hue < 300
    ? [x, 0, c]
    : [c, 0, x];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
};

/**
 * Checks a table's invariants: 1..21,841 unique non-empty names, one color and one isThing flag per class
 * when given, and an ignore index outside `0..K-1`. `file` names where the table came from.
 */
export const checkClassTable = (
  table: ClassTable,
  file: string,
): Effect.Effect<ClassTable, InvalidConfig> => {
  const k = table.names.length;
  const fail = (message: string) => Effect.fail(new InvalidConfig({ file, message }));
  if (k < 1 || k > MAX_CLASSES) return fail(`class table has ${k} classes; expected 1..${MAX_CLASSES}`);
  const seen = new Map<string, number>();
  for (let i = 0; i < k; i++) {
    const name = table.names[i];
    if (name.length === 0) return fail(`class ${i} has an empty name`);
    const before = seen.get(name);
    if (before !== undefined) return fail(`class name "${name}" appears twice (classes ${before} and ${i})`);
    seen.set(name, i);
  }
  if (table.colors.length !== k) return fail(`class table has ${k} names but ${table.colors.length} colors`);
  if (table.isThing !== undefined && table.isThing.length !== k) {
    return fail(`class table has ${k} names but ${table.isThing.length} isThing flags`);
  }
  const ignore = table.ignoreIndex;
  if (!Number.isInteger(ignore) || ignore < -1 || ignore > 65535) {
    return fail(`ignore index ${ignore} must be an integer in -1..65535`);
  }
  if (ignore >= 0 && ignore < k) {
    return fail(
      `ignore index ${ignore} is a class id (classes are 0..${k - 1}); choose one outside 0..${k - 1}, e.g. ${
        Math.max(k, DEFAULT_IGNORE_INDEX)
      }`,
    );
  }
  return Effect.succeed(table);
};

/** A class table from inline spec data; missing colors are generated, a missing ignore index is 255. */
export const fromInline = (
  inline: InlineClassTable,
  file: string,
): Effect.Effect<ClassTable, InvalidConfig> =>
  checkClassTable({
    names: inline.names,
    colors: inline.colors ?? inline.names.map((_, k) => defaultColor(k)),
    ignoreIndex: inline.ignoreIndex ?? DEFAULT_IGNORE_INDEX,
    ...(inline.isThing === undefined ? {} : { isThing: inline.isThing }),
  }, file);

/**
 * Reads a class table file: either the mmsegmentation/camvid form (`ignore_index` + `classes` with ids) or
 * the inline form (`names`, `colors`, `ignoreIndex`).
 *
 * Gotcha: ids in the `classes` form must be exactly 0..K-1 in order, since the position is the training id.
 */
export const readClassTable = (file: string): Effect.Effect<ClassTable, InvalidConfig> =>
  Effect.gen(function* () {
    const value = yield* readJson(file);
    // Pick the form by its key rather than decoding a union, so errors point into the right form.
    if (typeof value !== "object" || value === null || !("classes" in value)) {
      return yield* fromInline(yield* decodeConfig(InlineClassTable, value, file, "ignore"), file);
    }
    const parsed = yield* decodeConfig(ClassesFile, value, file, "ignore");
    const classes = parsed.classes;
    for (let i = 0; i < classes.length; i++) {
      if (classes[i].id !== i) {
        return yield* Effect.fail(
          new InvalidConfig({
            file,
            message: `class ids must be 0..${classes.length - 1} in order; entry ${i} ("${
              classes[i].name
            }") has id ${classes[i].id}`,
          }),
        );
      }
    }
    return yield* checkClassTable({
      names: classes.map((c) => c.name),
      colors: classes.map((c, k) => c.color ?? defaultColor(k)),
      ignoreIndex: parsed.ignore_index ?? DEFAULT_IGNORE_INDEX,
    }, file);
  });
