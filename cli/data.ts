/** `deno task data <dataset or experiment> [--split S] [--skip-bad]`. */
import { Effect, Option } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import { dataCommand } from "../data/command.ts";

export const dataCliCommand = Command.make(
  "data",
  {
    target: Argument.String("target").pipe(
      Argument.withDescription("camvid, coco133, ccp, a dataset .json or an experiment"),
    ),
    split: Flag.String("split").pipe(Flag.optional, Flag.withDescription("one split (default: all)")),
    skipBad: Flag.Boolean("skip-bad").pipe(
      Flag.withDefault(false),
      Flag.withDescription("report bad files and go on"),
    ),
  },
  ({ target, split, skipBad }) =>
    dataCommand({ target, ...(Option.isSome(split) ? { split: split.value } : {}), skipBad }).pipe(
      Effect.asVoid,
    ),
).pipe(
  Command.withDescription(
    "Read and validate every file of a dataset split; print counts and class frequencies.",
  ),
);
