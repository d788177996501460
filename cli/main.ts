/**
 * kappa's command line: one entry point, one subcommand per deno task (cli/run.ts runs them and turns
 * errors into lines). `spec`, `describe` and `data` are here too; their deno tasks run them through
 * cli/inspect.ts, which loads no model runtime and so needs fewer permissions.
 */
// First: room on the stack for a long command line before anything can start ONNX Runtime.
import { ensureStackForCommandLine } from "./command_line_stack.ts";
import { runCommands } from "./run.ts";
import { gradcheckCommand } from "./gradcheck.ts";
import { describeCommand, specCommand } from "./spec.ts";
import { dataCliCommand } from "./data.ts";
import { trainCommand } from "./train.ts";
import { evalCommand } from "./eval.ts";
import { predictCommand } from "./predict.ts";
import { exportCommand } from "./export.ts";
import { quickstartCommand } from "./quickstart.ts";
import { classifyCommand } from "./classify.ts";
import { webCommand } from "./web.ts";

ensureStackForCommandLine();
await runCommands([
  quickstartCommand,
  trainCommand,
  evalCommand,
  predictCommand,
  exportCommand,
  classifyCommand,
  webCommand,
  specCommand,
  describeCommand,
  dataCliCommand,
  gradcheckCommand,
]);
