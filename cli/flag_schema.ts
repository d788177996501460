/**
 * The command line's flags and arguments with their bounds, in one place: every numeric flag of every
 * command (and of `bench`) is an integer within documented bounds, every path is valid UTF-8, and a value
 * out of bounds is refused while the command line is parsed, before anything runs or is written, as one
 * line naming the flag (`train: --steps -5: must be an integer from 1 to 10,000,000; see …`).
 *
 * Paths typed by the user are resolved against the folder they typed the command in (cli/user_path.ts).
 *
 * The bounds that a spec has too (train.steps, train.seed) come from the spec's own (dsl/training.ts), so
 * a flag is refused exactly when the same value in the experiment file would be.
 */
import { Option } from "effect";
import { Argument, Flag } from "effect/cli";
import { badPath, boundsText, type IntBounds, outOfBounds } from "../dsl/bounds.ts";
import { userPath } from "./user_path.ts";

export { badPath, BOUNDS, boundsText, type IntBounds, maxThreads, outOfBounds } from "../dsl/bounds.ts";

/** An integer flag within `bounds`; its help text ends with the bounds. */
export const intFlag = (name: string, bounds: IntBounds, description: string): Flag.Flag<number> =>
  Flag.Int(name).pipe(
    Flag.filterMap(
      (n) => (outOfBounds(n, bounds) === undefined ? Option.some(n) : Option.none()),
      () => `must be ${boundsText(bounds)}`,
    ),
    Flag.withDescription(`${description}; ${boundsText(bounds)}`),
  );

const pathOption = (p: string) => (badPath(p) === undefined ? Option.some(p) : Option.none());

/** A path flag: valid UTF-8, not empty, relative to the folder the user typed the command in. */
export const pathFlag = (name: string, description: string): Flag.Flag<string> =>
  Flag.String(name).pipe(
    Flag.filterMap(pathOption, (p) => badPath(p)!),
    Flag.map(userPath),
    Flag.withDescription(description),
  );

/** The experiment argument of train, spec and describe. */
export const experimentArgument = (): Argument.Argument<string> =>
  pathArgument("experiment", "experiment .ts module or .json file");

/** The run-dir argument of eval, predict and export. */
export const runArgument = (): Argument.Argument<string> =>
  pathArgument("run-dir", "a run folder written by train (runs/<name>-<hash8>)");

/** The --checkpoint flag of eval, predict and export. */
export const checkpointFlag = (): Flag.Flag<Option.Option<string>> =>
  pathFlag(
    "checkpoint",
    "checkpoint file (default: best.safetensors, the best headline metric of the run's evaluations, all " +
      "on one image set; else the newest)",
  ).pipe(Flag.optional);

/** A path argument: valid UTF-8, not empty, relative to the folder the user typed the command in. */
export const pathArgument = (name: string, description: string): Argument.Argument<string> =>
  Argument.String(name).pipe(
    Argument.filterMap(pathOption, (p) => badPath(p)!),
    Argument.map(userPath),
    Argument.withDescription(description),
  );
