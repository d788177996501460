/** `deno task train <experiment> [--out DIR] [--resume] [--steps N] [--seed S] [--provider P] [--threads T]`. */
import { Console, Effect, Option } from "effect";
import { Argument, Command, Flag } from "effect/cli";
import { type Experiment, loadExperiment } from "../dsl/experiment.ts";
import { train, type TrainOptions } from "../train/train.ts";
import type { Provider } from "../plan/runtime.ts";

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

/** The experiment with command-line overrides of its step count and seed. */
export const withOverrides = (e: Experiment, steps?: number, seed?: number): Experiment => ({
  ...e,
  train: { ...e.train, ...(steps === undefined ? {} : { steps }), ...(seed === undefined ? {} : { seed }) },
});

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
  steps: Flag.Int("steps").pipe(Flag.optional, Flag.withDescription("override train.steps")),
  seed: Flag.Int("seed").pipe(Flag.optional, Flag.withDescription("override train.seed")),
  evalLimit: Flag.Int("eval-limit").pipe(
    Flag.optional,
    Flag.withDescription("images per periodic validation"),
  ),
  ...runFlags,
}, (a) =>
  Effect.gen(function* () {
    const e = withOverrides(yield* loadExperiment(a.experiment), opt(a.steps), opt(a.seed));
    const options: TrainOptions = {
      out: opt(a.out),
      resume: a.resume,
      provider: a.provider as Provider,
      threads: opt(a.threads),
      workers: opt(a.workers),
      evalLimit: opt(a.evalLimit),
    };
    const r = yield* train(e, options);
    yield* Console.log(`run: ${r.runDir}${r.report ? `\nreport: ${r.report}` : ""}`);
  })).pipe(Command.withDescription("Train an experiment; resumable, reproducible, checkpointed."));
