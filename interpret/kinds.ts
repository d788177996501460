/**
 * Model kinds and the tasks their runs are for.
 *
 * Each kind of model (`dsl/model.ts`) is trained, evaluated, predicted and exported as one task; the
 * programs (train/, eval/, the CLI) ask for the task they implement and refuse other kinds with a line
 * that names the kind, instead of assuming one head. A new kind is one more entry here.
 */
import { Data, Effect } from "effect";
import type { Classifier, Model, ModelKind, PanopticSegmenter, Segmenter } from "../dsl/model.ts";
import type { Experiment } from "../dsl/experiment.ts";

/** What a run of a model does: per-pixel classes, one class per image, or panoptic segments. */
export type Task = "semantic" | "classification" | "panoptic";

export const TASK: { readonly [K in ModelKind]: Task } = {
  Segmenter: "semantic",
  Classifier: "classification",
  PanopticSegmenter: "panoptic",
};

/** The model kinds of each task. */
interface TaskModels {
  readonly semantic: Segmenter;
  readonly classification: Classifier;
  readonly panoptic: PanopticSegmenter;
}
export type ModelFor<T extends Task> = TaskModels[T];
/** An experiment whose model is of task `T`. */
export type ExperimentFor<T extends Task> = Omit<Experiment, "model"> & { readonly model: ModelFor<T> };

/** A program was given a model kind it does not implement. */
export class UnsupportedModelKind extends Data.TaggedError("UnsupportedModelKind")<{
  readonly program: string;
  readonly kind: string;
  readonly task: Task;
  readonly supported: Task;
}> {
  override get message(): string {
    return `model: ${this.program} runs ${this.supported} models; this experiment's model is a ${this.kind} ` +
      `(${this.task})`;
  }
}

const isFor = <T extends Task>(m: Model, task: T): m is ModelFor<T> => TASK[m._tag] === task;

/** The model, when its kind's task is `task`; `program` names the caller in the error. */
export const modelFor = <T extends Task>(
  model: Model,
  task: T,
  program: string,
): Effect.Effect<ModelFor<T>, UnsupportedModelKind> =>
  isFor(model, task) ? Effect.succeed(model) : Effect.fail(
    new UnsupportedModelKind({ program, kind: model._tag, task: TASK[model._tag], supported: task }),
  );

/** The experiment, when its model's task is `task`; `program` names the caller in the error. */
export const requireTask = <T extends Task>(
  e: Experiment,
  task: T,
  program: string,
): Effect.Effect<ExperimentFor<T>, UnsupportedModelKind> =>
  Effect.map(modelFor(e.model, task, program), (model) => ({ ...e, model }));

/** `modelFor` for code that has already checked the kind (benchmarks, tests): throws otherwise. */
export const expectModelFor = <T extends Task>(model: Model, task: T, program: string): ModelFor<T> =>
  Effect.runSync(modelFor(model, task, program));
