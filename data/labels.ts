/**
 * Label conventions: how raw mask values become training ids, and image-level targets derived from masks.
 *
 * A dataset reader describes its raw values as source classes (`SourceLabels`); the spec's label options
 * (`classMap`, `subset`, `hidden`, `ignoreIndex`) then define the training class table. Everything is folded
 * into one lookup table from raw value to output label, so mapping a mask is one pass over its pixels.
 */
import { Effect } from "effect";
import { checkClassTable, type ClassTable, DEFAULT_IGNORE_INDEX, type Rgb } from "./classes.ts";
import { InvalidConfig, InvalidLabels } from "./errors.ts";

/** Lookup-table entry for a raw value that is neither a class nor ignore. */
export const INVALID = -2147483648;

/** Raw mask values are 8- or 16-bit, so a table of 65,536 entries covers every value. */
export const RAW_VALUES = 65536;

/**
 * A dataset's native classes and how raw mask values map onto them.
 *
 * `rawToSource[v]` is the source class of raw value `v`, `-1` for void/ignore, or `INVALID`.
 * `invalidHint` completes the sentence "mask value 12 is …" for values that are `INVALID`.
 */
export interface SourceLabels {
  readonly names: readonly string[];
  readonly colors: readonly Rgb[];
  readonly isThing?: readonly boolean[];
  readonly ignoreIndex: number;
  readonly rawToSource: Int32Array;
  readonly invalidHint: string;
}

/** The spec's label options (see `LabelFields` in spec.ts). */
export interface LabelOptions {
  readonly ignoreIndex?: number;
  readonly classMap?: { readonly [source: string]: string | null };
  readonly subset?: readonly string[];
  readonly hidden?: readonly string[];
  readonly imageLabels?: "image" | "crop";
}

/** The training class table and the lookup table that produces it from raw mask values. */
export interface LabelMapping {
  readonly classes: ClassTable;
  /** Raw value → training id, `classes.ignoreIndex`, or `INVALID`. */
  readonly lut: Int32Array;
  /** Per training class: 1 when its masks are hidden (pixels → ignore) but image-level labels keep it. */
  readonly hidden: Uint8Array;
  readonly invalidHint: string;
}

/**
 * Builds the training classes from a dataset's source classes and the spec's label options.
 *
 * Order of operations: `classMap` renames/merges (targets keep first-appearance order, `null` → ignore),
 * then `subset` keeps the listed classes in the listed order (all others → ignore), then `hidden` marks
 * classes of the result. Unknown names are errors naming the spec `file`.
 */
export const buildLabelMapping = (
  source: SourceLabels,
  options: LabelOptions,
  file: string,
): Effect.Effect<LabelMapping, InvalidConfig> =>
  Effect.gen(function* () {
    const fail = (message: string) => Effect.fail(new InvalidConfig({ file, message }));
    const known = (names: readonly string[], what: string, available: readonly string[]) => {
      const missing = names.filter((n) => !available.includes(n));
      return missing.length === 0 ? Effect.void : fail(
        `unknown class ${missing.map((m) => `"${m}"`).join(", ")} in ${what}; known: ${shortList(available)}`,
      );
    };

    // 1. classMap: source id → mapped id (or -1), mapped names in first-appearance order.
    const classMap = options.classMap ?? {};
    yield* known(Object.keys(classMap), "classMap", source.names);
    const mappedNames: string[] = [];
    const mappedFirstSource: number[] = [];
    const sourceToMapped = new Int32Array(source.names.length);
    source.names.forEach((name, s) => {
      const target = name in classMap ? classMap[name] : name;
      if (target === null) {
        sourceToMapped[s] = -1;
        return;
      }
      let m = mappedNames.indexOf(target);
      if (m < 0) {
        m = mappedNames.push(target) - 1;
        mappedFirstSource.push(s);
      }
      sourceToMapped[s] = m;
    });

    // 2. subset: mapped id → output id (or -1).
    const outNames = options.subset ?? mappedNames;
    yield* known(outNames, "subset", mappedNames);
    const mappedToOut = Int32Array.from(mappedNames, (n) => outNames.indexOf(n));
    const outSource = outNames.map((n) => mappedFirstSource[mappedNames.indexOf(n)]);

    const classes = yield* checkClassTable({
      names: outNames,
      colors: outSource.map((s) => source.colors[s]),
      ignoreIndex: options.ignoreIndex ?? source.ignoreIndex ?? DEFAULT_IGNORE_INDEX,
      ...(source.isThing === undefined ? {} : { isThing: outSource.map((s) => source.isThing![s]) }),
    }, file);

    // 3. hidden classes, named in the output table.
    const hiddenNames = options.hidden ?? [];
    yield* known(hiddenNames, "hidden", outNames);
    const hidden = new Uint8Array(outNames.length);
    for (const n of hiddenNames) hidden[outNames.indexOf(n)] = 1;

    const lut = new Int32Array(source.rawToSource.length);
    for (let v = 0; v < lut.length; v++) {
      const s = source.rawToSource[v];
      if (s === INVALID) lut[v] = INVALID;
      else if (s < 0) lut[v] = classes.ignoreIndex;
      else {
        const m = sourceToMapped[s];
        const o = m < 0 ? -1 : mappedToOut[m];
        lut[v] = o < 0 ? classes.ignoreIndex : o;
      }
    }
    return { classes, lut, hidden, invalidHint: source.invalidHint };
  });

const shortList = (names: readonly string[]) =>
  names.length <= 12 ? names.join(", ") : `${names.slice(0, 12).join(", ")}, … (${names.length} classes)`;

/**
 * Maps a raw mask to training ids through `mapping.lut`, failing with one line naming `file` when some
 * value is outside the class table (it lists up to five such values and how many pixels carry them).
 */
export const applyLabelMapping = (
  raw: Uint8Array | Uint16Array,
  mapping: LabelMapping,
  file: string,
): Effect.Effect<Int32Array, InvalidLabels> => {
  const out = new Int32Array(raw.length);
  const lut = mapping.lut;
  let bad = 0;
  for (let i = 0; i < raw.length; i++) {
    const v = lut[raw[i]];
    out[i] = v;
    if (v === INVALID) bad++;
  }
  if (bad === 0) return Effect.succeed(out);
  const values = new Set<number>();
  for (let i = 0; i < raw.length && values.size < 6; i++) if (lut[raw[i]] === INVALID) values.add(raw[i]);
  const list = [...values].slice(0, 5).join(", ") + (values.size > 5 ? ", …" : "");
  return Effect.fail(
    new InvalidLabels({
      file,
      message: `mask value${values.size > 1 ? "s" : ""} ${list} (${bad} pixels) ${mapping.invalidHint}`,
    }),
  );
};

/** Multi-hot image-level labels over `numClasses` from a label map; ignore and out-of-range values are skipped. */
export const imageLabelsOf = (labels: ArrayLike<number>, numClasses: number): Uint8Array => {
  const present = new Uint8Array(numClasses);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v >= 0 && v < numClasses) present[v] = 1;
  }
  return present;
};

/** Sets the pixels of hidden classes to `ignoreIndex`, in place; returns the same array. */
export const hideClasses = (labels: Int32Array, hidden: Uint8Array, ignoreIndex: number): Int32Array => {
  if (!hidden.includes(1)) return labels;
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v >= 0 && v < hidden.length && hidden[v] === 1) labels[i] = ignoreIndex;
  }
  return labels;
};
