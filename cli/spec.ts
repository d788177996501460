/** `deno task spec <experiment>` and `deno task describe <experiment> [--json]`. */
import { Console, Effect } from "effect";
import { Command, Flag } from "effect/cli";
import { experimentHash, experimentJson, loadExperiment } from "../dsl/experiment.ts";
import { trainSize } from "../interpret/shapes.ts";
import { experimentArgument } from "./flag_schema.ts";

export const specCommand = Command.make(
  "spec",
  { experiment: experimentArgument() },
  ({ experiment }) =>
    Effect.gen(function* () {
      const e = yield* loadExperiment(experiment);
      yield* Console.log(experimentJson(e));
    }),
).pipe(Command.withDescription("Print an experiment's canonical JSON (validated)."));

export const describeCommand = Command.make(
  "describe",
  {
    experiment: experimentArgument(),
    json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("machine-readable output")),
  },
  ({ experiment, json }) =>
    Effect.gen(function* () {
      const e = yield* loadExperiment(experiment);
      // Imported once the experiment is loaded: `spec` (same entry point, cli/inspect.ts) must not load the
      // interpreter, which loads ONNX Runtime's native addon (deno.json's permissions).
      const { describeModel, describeTraining, formatDescription, formatTraining } = yield* Effect.promise(
        () => import("../interpret/describe.ts"),
      );
      const d = describeModel(e.model, trainSize(e));
      const training = describeTraining(e);
      yield* Console.log(
        json
          ? JSON.stringify(
            { name: e.name, hash: experimentHash(e), ...d, ...(training ? { training } : {}) },
            null,
            2,
          )
          : formatDescription(e.name, d) + (training ? `\n\n${formatTraining(training, trainSize(e))}` : ""),
      );
    }),
).pipe(Command.withDescription(
  "Parameters and GFLOPs per component (backbone, ξ, ψ, total); what a frozen backbone leaves to train and a training step's GFLOPs.",
));
