/**
 * Running a set of kappa's commands as a process: parse the command line, run the command, and turn what
 * went wrong into text and an exit code. This is the one place where typed errors become text: each is
 * printed as one line (a spec error as one line per violation) and the process exits non-zero.
 *
 * Two entry points use it: cli/main.ts (every command) and cli/inspect.ts (the commands that only read
 * specs and data, which the deno tasks run with narrower permissions).
 */
import { Cause, Effect, Exit, Option } from "effect";
import { CliError, CliOutput, Command } from "effect/cli";
import * as NodeServices from "@effect/platform-node/NodeServices";
import { errorLines } from "./errors.ts";
import { exitCode, rankLines, Said } from "./ranks.ts";
import { TASK, usageErrorLine } from "./usage_error.ts";

/** Runs one of `commands` as this process's command line says, then exits with its status. */
export const runCommands = async (commands: readonly Command.Command.Any[]): Promise<never> => {
  // Named as users type it, so that every help text's usage line reads `npx --yes deno@2.9.6 task train …`.
  const root = Command.make(TASK).pipe(
    Command.withDescription(
      "Large-vocabulary image segmentation: RankSeg segmenters compiled to ONNX Runtime plans.",
    ),
    Command.withSubcommands(commands),
  );
  // A command line that does not parse becomes one line below, not the whole help text: the presenter
  // stays silent on invalid invocations and shows help only when it is asked for (or nothing was given).
  const presenter = CliOutput.layerPresenter({
    present: (event) =>
      event._tag === "InvalidInvocation" ? Effect.void : CliOutput.defaultPresenter.present(event),
  });
  // Every command's services come from the Node platform layer.
  const program = Command.run(root, { version: "0.1.0" }).pipe(
    Effect.provide(presenter),
    Effect.provide(NodeServices.layer),
  ) as Effect.Effect<void, unknown>;

  const exit = await Effect.runPromiseExit(program);
  if (Exit.isSuccess(exit)) Deno.exit(0);
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
  // One rank of several says only what is its own to say (cli/ranks.ts).
  for (const line of Option.isSome(failure) ? rankLines(failure.value, lines) : lines) console.error(line);
  // Stopped on request (Ctrl-C): training wrote a checkpoint, predict the images done so far.
  if (Option.isNone(failure)) Deno.exit(1);
  Deno.exit(failure.value instanceof Said ? failure.value.code : exitCode(failure.value));
};
