/**
 * `deno task train <experiment> [--out DIR] [--resume | --extend-steps N] [--steps N] [--seed S]
 * [--frozen-backbone D] [--provider P] [--threads T] [--eval-limit N]`.
 */
import { Console, Data, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { decodeExperiment, loadExperiment, withOverrides } from "../dsl/experiment.ts";
import { frozenBackbone } from "../dsl/training.ts";
import { train, type TrainOptions } from "../train/train.ts";
import type { Provider } from "../runtime/execute.ts";
import { BOUNDS, experimentArgument, intFlag, pathFlag } from "./flag_schema.ts";
import { TASK } from "./usage_error.ts";

export const runFlags = {
  provider: Flag.Literals("provider", ["cpu", "webgpu", "cuda"]).pipe(
    Flag.withDefault("cpu" as const),
    Flag.withDescription("execution provider; an unavailable one is an error"),
  ),
  threads: intFlag(
    "threads",
    BOUNDS.threads,
    "intra-op threads of ONNX Runtime (default: one per core)",
  ).pipe(Flag.optional),
  workers: intFlag(
    "workers",
    BOUNDS.workers,
    "data-loading Worker threads, 0 to load on the main thread (default: one per spare core, at most 4)",
  ).pipe(Flag.optional),
};

const opt = <A>(o: Option.Option<A>): A | undefined => Option.getOrUndefined(o);

/** Two flags that cannot be given together. */
class ConflictingFlags
  extends Data.TaggedError("ConflictingFlags")<{ readonly flags: string; readonly why: string }> {
  override get message(): string {
    return `train: ${this.flags}: ${this.why}; see ${TASK} train --help`;
  }
}

export const trainCommand = Command.make("train", {
  experiment: experimentArgument(),
  out: pathFlag("out", "run folder (default runs/<name>-<hash8>)").pipe(Flag.optional),
  resume: Flag.Boolean("resume").pipe(
    Flag.withDefault(false),
    Flag.withDescription("continue from the newest checkpoint"),
  ),
  extendSteps: intFlag(
    "extend-steps",
    BOUNDS.steps,
    "continue the run in the folder to N steps in total (implies --resume; only train.steps may differ). " +
      "The learning-rate schedule is recomputed over the new total: steps after the resume point follow " +
      "it (a poly schedule thus rises again from its end value)",
  ).pipe(Flag.optional),
  steps: intFlag("steps", BOUNDS.steps, "override train.steps").pipe(Flag.optional),
  seed: intFlag("seed", BOUNDS.seed, "override train.seed").pipe(Flag.optional),
  frozenBackbone: intFlag(
    "frozen-backbone",
    BOUNDS.draws,
    "set train.frozenBackbone: train the head on the frozen backbone, reading its outputs for D cached " +
      "augmentation draws per training image (0: no cache, the frozen backbone runs every step)",
  ).pipe(Flag.optional),
  evalLimit: intFlag(
    "eval-limit",
    BOUNDS.images,
    "evaluate on the first N images of the split only (every evaluation of the run, so the best " +
      "checkpoint and the final table are judged on the same images)",
  ).pipe(Flag.optional),
  featureCache: pathFlag(
    "feature-cache",
    "where frozen-backbone feature caches live (train.frozenBackbone; default runs/.feature-cache)",
  ).pipe(Flag.optional),
  ...runFlags,
}, (a) =>
  Effect.gen(function* () {
    if (Option.isSome(a.extendSteps) && Option.isSome(a.steps)) {
      return yield* new ConflictingFlags({
        flags: "--steps and --extend-steps",
        why: "give one (--extend-steps N continues the run to N steps)",
      });
    }
    const draws = opt(a.frozenBackbone);
    const loaded = yield* loadExperiment(a.experiment);
    const overridden = withOverrides(
      loaded,
      opt(a.steps),
      opt(a.seed),
      draws === undefined ? undefined : frozenBackbone({ draws }),
    );
    // A frozen backbone is checked against the rest of the spec (e.g. the independent scheme's ranker).
    const e = draws === undefined ? overridden : yield* decodeExperiment(overridden, a.experiment);
    const options: TrainOptions = {
      out: opt(a.out),
      resume: a.resume,
      extendSteps: opt(a.extendSteps),
      provider: a.provider as Provider,
      threads: opt(a.threads),
      workers: opt(a.workers),
      evalLimit: opt(a.evalLimit),
      featureCache: opt(a.featureCache),
    };
    const r = yield* train(e, options);
    yield* Console.log(`run: ${r.runDir}${r.report ? `\nreport: ${r.report}` : ""}`);
  })).pipe(Command.withDescription("Train an experiment; resumable, reproducible, checkpointed."));
