/**
 * Data checks shared by kinds before anything is compiled: the class table of the dataset against the
 * model's class count and ignore index.
 */
import { Data, Effect } from "effect";
import type { Dataset } from "../data/dataset.ts";

/** The experiment does not fit its data (class count, ignore index, labels the losses need). */
export class ExperimentDataMismatch extends Data.TaggedError("ExperimentDataMismatch")<{
  readonly path: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `${this.path}: ${this.reason}`;
  }
}

/** Checks that the dataset's class table fits the model (and its ignore index, when the model has one). */
export const checkClasses = (
  model: { readonly classes: number; readonly ignoreIndex?: number },
  dataset: Pick<Dataset, "classes" | "name">,
): Effect.Effect<void, ExperimentDataMismatch> =>
  Effect.gen(function* () {
    const { classes, name: source } = dataset;
    if (classes.names.length !== model.classes) {
      return yield* new ExperimentDataMismatch({
        path: "model.classes",
        reason: `${model.classes}, but the dataset (${source}) has ${classes.names.length} classes`,
      });
    }
    if (model.ignoreIndex !== undefined && classes.ignoreIndex !== model.ignoreIndex) {
      return yield* new ExperimentDataMismatch({
        path: "model.ignoreIndex",
        reason:
          `${model.ignoreIndex}, but the dataset (${source}) marks ignored pixels with ${classes.ignoreIndex}`,
      });
    }
  });
