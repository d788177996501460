/**
 * `deno task train <experiment> [--out DIR] [--resume | --extend-steps N] [--steps N] [--seed S]
 * [--provider P] [--threads T] [--eval-limit N]`.
 */
import { Console, Data, Effect, Option } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import { loadExperiment, withOverrides } from "../dsl/experiment.ts";
import { train, type TrainOptions } from "../train/train.ts";
import type { Provider } from "../runtime/execute.ts";

export const runFlags = {
  provider: Flag.Literals("provider", ["cpu", "webgpu", "cuda"]).pipe(
    Flag.withDefault("cpu" as const),
    Flag.withDescription("execution provider; an unavailable one is an error"),
  ),
  threads: Flag.Int("threads").pipe(
    Flag.optional,
    Flag.withDescription("intra-op threads (default: one per core)"),
  ),
  workers: Flag.Int("workers").pipe(Flag.optional, Flag.withDescription("data-loading Worker threads")),
};

const opt = <A>(o: Option.Option<A>): A | undefined => Option.getOrUndefined(o);

/** Two flags that cannot be given together. */
class ConflictingFlags
  extends Data.TaggedError("ConflictingFlags")<{ readonly flags: string; readonly why: string }> {
  override get message(): string {
    return `train: ${this.flags}: ${this.why}; see deno task train --help`;
  }
}

export const trainCommand = Command.make("train", {
  experiment: Argument.String("experiment").pipe(
    Argument.withDescription("experiment .ts module or .json file"),
  ),
  out: Flag.String("out").pipe(
    Flag.optional,
    Flag.withDescription("run folder (default runs/<name>-<hash8>)"),
  ),
  resume: Flag.Boolean("resume").pipe(
    Flag.withDefault(false),
    Flag.withDescription("continue from the newest checkpoint"),
  ),
  extendSteps: Flag.Int("extend-steps").pipe(
    Flag.optional,
    Flag.withDescription(
      "continue the run in the folder to N steps in total (implies --resume; only train.steps may differ). " +
        "The learning-rate schedule is recomputed over the new total: steps after the resume point follow " +
        "it (a poly schedule thus rises again from its end value)",
    ),
  ),
  steps: Flag.Int("steps").pipe(Flag.optional, Flag.withDescription("override train.steps")),
  seed: Flag.Int("seed").pipe(Flag.optional, Flag.withDescription("override train.seed")),
  evalLimit: Flag.Int("eval-limit").pipe(
    Flag.optional,
    Flag.withDescription(
      "evaluate on the first N images of the split only (every evaluation of the run, so the best " +
        "checkpoint and the final table are judged on the same images)",
    ),
  ),
  ...runFlags,
}, (a) =>
  Effect.gen(function* () {
    if (Option.isSome(a.extendSteps) && Option.isSome(a.steps)) {
      return yield* new ConflictingFlags({
        flags: "--steps and --extend-steps",
        why: "give one (--extend-steps N continues the run to N steps)",
      });
    }
    const e = withOverrides(yield* loadExperiment(a.experiment), opt(a.steps), opt(a.seed));
    const options: TrainOptions = {
      out: opt(a.out),
      resume: a.resume,
      extendSteps: opt(a.extendSteps),
      provider: a.provider as Provider,
      threads: opt(a.threads),
      workers: opt(a.workers),
      evalLimit: opt(a.evalLimit),
    };
    const r = yield* train(e, options);
    yield* Console.log(`run: ${r.runDir}${r.report ? `\nreport: ${r.report}` : ""}`);
  })).pipe(Command.withDescription("Train an experiment; resumable, reproducible, checkpointed."));
