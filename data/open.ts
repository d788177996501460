/**
 * Opening a split of any dataset spec, dispatching on its kind.
 */
import type { Effect } from "effect";
import { openCocoPanoptic } from "./coco.ts";
import type { Dataset } from "./dataset.ts";
import type { DataError } from "./errors.ts";
import { openFolder } from "./folder.ts";
import { openProcedural } from "./procedural.ts";
import type { DatasetSpec } from "../dsl/dataset.ts";

/**
 * Opens `split` of the dataset `spec` describes. `specFile` names where the spec came from, for errors
 * about the spec itself (unknown class names in `subset`, a bad inline table).
 */
export const openDataset = (
  spec: DatasetSpec,
  split: string,
  specFile = "<dataset spec>",
): Effect.Effect<Dataset, DataError> => {
  switch (spec._tag) {
    case "Folder":
      return openFolder(spec, split, specFile);
    case "CocoPanoptic":
      return openCocoPanoptic(spec, split, specFile);
    case "Procedural":
      return openProcedural(spec, split, specFile);
  }
};

/** The split a loader reads when none is named: the spec's `trainSplit` or `testSplit`. */
export const defaultSplit = (spec: DatasetSpec, role: "train" | "test"): string =>
  role === "train" ? spec.trainSplit : spec.testSplit;
