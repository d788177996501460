/**
 * Model kinds and the tasks their runs are for.
 *
 * Each kind of model (`dsl/model.ts`) is trained, evaluated, predicted and exported as one task; the
 * programs (train/, eval/, the CLI) ask for the task they implement and refuse other kinds with a line
 * that names the kind, instead of assuming one head. A new kind is one more entry here.
 */
import { Data, Effect } from "effect";
import type { Model, ModelKind } from "../dsl/model.ts";

/** What a run of a model does: per-pixel classes, one class per image, or panoptic segments. */
export type Task = "semantic" | "classification" | "panoptic";

export const TASK: { readonly [K in ModelKind]: Task } = { Segmenter: "semantic" };

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

/** Succeeds with the model when its kind's task is `task`; `program` names the caller in the error. */
export const requireTask = <M extends Model>(model: M, task: Task, program: string) =>
  TASK[model._tag] === task ? Effect.succeed(model) : Effect.fail(
    new UnsupportedModelKind({ program, kind: model._tag, task: TASK[model._tag], supported: task }),
  );
