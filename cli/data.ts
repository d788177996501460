/** `deno task data <dataset or experiment> [--split S] [--skip-bad]`. */
import { Effect, Option } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import { builtinDatasets } from "../dsl/datasets.ts";
import { badPath } from "./flag_schema.ts";
import { userPath } from "./user_path.ts";

/** A built-in dataset's name as it is; anything else is a path typed in the user's folder. */
const target = (t: string) => (Object.hasOwn(builtinDatasets, t) ? t : userPath(t));

export const dataCliCommand = Command.make(
  "data",
  {
    target: Argument.String("target").pipe(
      Argument.filterMap(
        (t) => (badPath(t) === undefined ? Option.some(target(t)) : Option.none()),
        (t) => badPath(t)!,
      ),
      Argument.withDescription("camvid, coco133, ccp, a dataset .json or an experiment"),
    ),
    split: Flag.String("split").pipe(Flag.optional, Flag.withDescription("one split (default: all)")),
    skipBad: Flag.Boolean("skip-bad").pipe(
      Flag.withDefault(false),
      Flag.withDescription("report bad files and go on"),
    ),
  },
  ({ target, split, skipBad }) =>
    // Imported when the command runs: it decodes images with sharp, whose native addon `spec` and
    // `describe` (which share cli/inspect.ts) must not need to load.
    Effect.promise(() => import("../data/command.ts")).pipe(
      Effect.flatMap(({ dataCommand }) =>
        dataCommand({ target, ...(Option.isSome(split) ? { split: split.value } : {}), skipBad })
      ),
      Effect.asVoid,
    ),
).pipe(
  Command.withDescription(
    "Read and validate every file of a dataset split; print counts and class frequencies.",
  ),
);
