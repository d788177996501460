/**
 * kappa's command line: one entry point, one subcommand per deno task.
 *
 * This is the one place where typed errors become text: each is printed as one line (a spec error as
 * one line per violation) and the process exits non-zero.
 */
import { Cause, Effect, Exit, Option } from "effect";
import { CliError, CliOutput, Command } from "effect/cli";
import * as NodeServices from "@effect/platform-node/NodeServices";
import { gradcheckCommand } from "./gradcheck.ts";
import { describeCommand, specCommand } from "./spec.ts";
import { dataCliCommand } from "./data.ts";
import { trainCommand } from "./train.ts";
import { evalCommand } from "./eval.ts";
import { predictCommand } from "./predict.ts";
import { exportCommand } from "./export.ts";
import { quickstartCommand } from "./quickstart.ts";
import { classifyCommand } from "./classify.ts";
import { errorLines } from "./errors.ts";
import { usageErrorLine } from "./usage_error.ts";

const root = Command.make("kappa").pipe(
  Command.withDescription(
    "Large-vocabulary image segmentation: RankSeg segmenters compiled to ONNX Runtime plans.",
  ),
  Command.withSubcommands([
    quickstartCommand,
    trainCommand,
    evalCommand,
    predictCommand,
    exportCommand,
    classifyCommand,
    specCommand,
    describeCommand,
    dataCliCommand,
    gradcheckCommand,
  ]),
);

// A command line that does not parse becomes one line below, not the whole help text: the presenter
// stays silent on invalid invocations and shows help only when it is asked for (or nothing was given).
const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation" ? Effect.void : CliOutput.defaultPresenter.present(event),
});
const program = Command.run(root, { version: "0.1.0" }).pipe(
  Effect.provide(presenter),
  Effect.provide(NodeServices.layer),
);

const exit = await Effect.runPromiseExit(program);
if (Exit.isFailure(exit)) {
  const failure = Cause.findErrorOption(exit.cause);
  const usage =
    Option.isSome(failure) && CliError.isCliError(failure.value) && failure.value._tag === "ShowHelp"
      ? failure.value
      : undefined;
  // Help shown because nothing was asked for is not an error worth a line.
  if (usage && usage.errors.length === 0) Deno.exit(0);
  const lines = usage
    ? [usageErrorLine(usage.commandPath, usage.errors[0])]
    : Option.isSome(failure)
    ? errorLines(failure.value)
    : [Cause.pretty(exit.cause).split("\n")[0]];
  for (const line of lines) console.error(line);
  // Stopped on request (Ctrl-C): training wrote a checkpoint, predict the images done so far.
  const stopped = ["Stopped", "PredictionStopped"];
  Deno.exit(
    Option.isSome(failure) && stopped.includes((failure.value as { _tag?: string })._tag ?? "") ? 130 : 1,
  );
}
