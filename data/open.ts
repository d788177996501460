/**
 * Opening a split of any dataset spec, dispatching on its kind.
 */
import { Effect } from "effect";
import { existsSync, statSync } from "node:fs";
import { isAbsolute } from "node:path";
import process from "node:process";
import { openCocoPanoptic } from "./coco.ts";
import type { Dataset } from "./dataset.ts";
import { type DataError, InvalidConfig } from "./errors.ts";
import { openFolder } from "./folder.ts";
import { openProcedural } from "./procedural.ts";
import type { DatasetSpec } from "../dsl/dataset.ts";

/**
 * Checks that a file-backed dataset's `root` is a directory, failing with a spec error that names
 * `specFile` and the field (`<specPath>.root`) instead of the first file that could not be read.
 * `specPath` is where the dataset spec sits in `specFile`: `"data.dataset"` in an experiment, `""` when the
 * file is a dataset spec.
 */
export const checkDatasetRoot = (
  spec: DatasetSpec,
  specFile = "<dataset spec>",
  specPath = "data.dataset",
): Effect.Effect<void, InvalidConfig> =>
  Effect.suspend(() => {
    if (spec._tag === "Procedural") return Effect.void;
    const field = specPath === "" ? "root" : `${specPath}.root`;
    const relative = isAbsolute(spec.root) ? "" : ` (relative to the working directory ${process.cwd()})`;
    const fail = (what: string) =>
      Effect.fail(
        new InvalidConfig({ file: specFile, message: `${field}: ${spec.root} ${what}${relative}` }),
      );
    if (!existsSync(spec.root)) return fail("does not exist");
    if (!statSync(spec.root).isDirectory()) return fail("is not a directory");
    return Effect.void;
  });

/**
 * Opens `split` of the dataset `spec` describes. `specFile` names where the spec came from and `specPath`
 * where in that file it sits (see `checkDatasetRoot`), for errors about the spec itself (a missing root,
 * unknown class names in `subset`, a bad inline table).
 */
export const openDataset = (
  spec: DatasetSpec,
  split: string,
  specFile = "<dataset spec>",
  specPath = "data.dataset",
): Effect.Effect<Dataset, DataError> =>
  Effect.flatMap(checkDatasetRoot(spec, specFile, specPath), (): Effect.Effect<Dataset, DataError> => {
    switch (spec._tag) {
      case "Folder":
        return openFolder(spec, split, specFile);
      case "CocoPanoptic":
        return openCocoPanoptic(spec, split, specFile);
      case "Procedural":
        return openProcedural(spec, split, specFile);
    }
  });

/** The split a loader reads when none is named: the spec's `trainSplit` or `testSplit`. */
export const defaultSplit = (spec: DatasetSpec, role: "train" | "test"): string =>
  role === "train" ? spec.trainSplit : spec.testSplit;
