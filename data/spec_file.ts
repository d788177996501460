/**
 * Finding a dataset spec from a CLI target: a built-in name, a `.json` file, or a `.ts`/`.js` module whose
 * default export is a spec or an experiment that embeds one (files are loaded by `dsl/load_spec.ts`, as
 * experiments are).
 */
import { Effect } from "effect";
import { existsSync } from "node:fs";
import { builtinDatasets } from "../dsl/datasets.ts";
import { InvalidConfig } from "./errors.ts";
import { type DatasetSpec, decodeDatasetSpec, ImageLevelSources } from "../dsl/dataset.ts";
import { decodeConfig } from "../dsl/decode.ts";
import { loadSpecFile } from "../dsl/load_spec.ts";

/** A dataset spec and where it came from. */
export interface LoadedSpec {
  readonly spec: DatasetSpec;
  readonly file: string;
  /** Where in `file` the dataset spec sits: `""` (the file is one), `"dataset"` or `"data.dataset"`. */
  readonly path: string;
  /** An experiment's image-level sources (`data.imageLevel`), when it names some. */
  readonly imageLevel?: ImageLevelSources;
}

/**
 * The dataset spec inside a loaded value and its path there: an experiment's `data.dataset` (experiments
 * carry `_tag: "Experiment"`, so this is looked for before the tag), else the value itself when it has a
 * `_tag`, else a `dataset` field.
 */
const datasetOf = (
  value: unknown,
  file: string,
): Effect.Effect<{ readonly value: unknown; readonly path: string }, InvalidConfig> => {
  const o = value as { _tag?: unknown; dataset?: unknown; data?: { dataset?: unknown } } | null;
  if (typeof o === "object" && o !== null) {
    if (typeof o.data === "object" && o.data !== null && o.data.dataset !== undefined) {
      return Effect.succeed({ value: o.data.dataset, path: "data.dataset" });
    }
    if (o._tag === "Experiment") {
      return Effect.fail(new InvalidConfig({ file, message: "data.dataset: the experiment has no dataset" }));
    }
    if (o._tag !== undefined) return Effect.succeed({ value: o, path: "" });
    if (o.dataset !== undefined) return Effect.succeed({ value: o.dataset, path: "dataset" });
  }
  return Effect.fail(
    new InvalidConfig({
      file,
      message:
        "no dataset spec: expected an object with _tag, or an experiment with `dataset` or `data.dataset`",
    }),
  );
};

/** The built-in names as a list in words: "camvid, coco133 or ccp". */
const builtinNames = (): string => {
  const names = Object.keys(builtinDatasets);
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
};

/** Loads the dataset spec a CLI target names (see module doc). */
export const loadDatasetSpec = (target: string): Effect.Effect<LoadedSpec, InvalidConfig> =>
  Effect.gen(function* () {
    const builtin = builtinDatasets[target];
    if (builtin !== undefined) return { spec: builtin, file: target, path: "" };
    if (!existsSync(target)) {
      return yield* Effect.fail(
        new InvalidConfig({
          file: target,
          message: `not found; expected ${builtinNames()}, a .json spec or a .ts module`,
        }),
      );
    }
    const value = yield* loadSpecFile(target);
    const found = yield* datasetOf(value, target);
    const spec = yield* decodeDatasetSpec(found.value, target);
    const il = (value as { data?: { imageLevel?: unknown } } | null)?.data?.imageLevel;
    const imageLevel = il === undefined ? undefined : yield* decodeConfig(ImageLevelSources, il, target);
    return { spec, file: target, path: found.path, ...(imageLevel ? { imageLevel } : {}) };
  });
