/** `deno task spec <experiment>` and `deno task describe <experiment> [--json]`. */
import { Console, Effect } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import { experimentHash, experimentJson, loadExperiment } from "../dsl/experiment.ts";
import { describeModel, formatDescription } from "../interpret/describe.ts";
import { trainSize } from "../interpret/shapes.ts";

const experimentArg = Argument.String("experiment").pipe(
  Argument.withDescription("experiment .ts module or .json file"),
);

export const specCommand = Command.make(
  "spec",
  { experiment: experimentArg },
  ({ experiment }) =>
    Effect.gen(function* () {
      const e = yield* loadExperiment(experiment);
      yield* Console.log(experimentJson(e));
    }),
).pipe(Command.withDescription("Print an experiment's canonical JSON (validated)."));

export const describeCommand = Command.make(
  "describe",
  {
    experiment: experimentArg,
    json: Flag.Boolean("json").pipe(Flag.withDefault(false), Flag.withDescription("machine-readable output")),
  },
  ({ experiment, json }) =>
    Effect.gen(function* () {
      const e = yield* loadExperiment(experiment);
      const d = describeModel(e.model, trainSize(e));
      yield* Console.log(
        json
          ? JSON.stringify({ name: e.name, hash: experimentHash(e), ...d }, null, 2)
          : formatDescription(e.name, d),
      );
    }),
).pipe(Command.withDescription("Parameters and GFLOPs per component (backbone, ξ, ψ, total)."));
