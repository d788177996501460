/**
 * `deno task train <experiment> [--out DIR] [--resume | --extend-steps N] [--steps N] [--seed S]
 * [--frozen-backbone D] [--provider P] [--threads T] [--eval-limit N] [--ranks N]`; under mpirun / srun
 * --mpi=pmix, one rank of a data-parallel run (cli/ranks.ts).
 */
import { Cause, Console, Data, Effect, Option } from "effect";
import { Command, Flag } from "effect/cli";
import { decodeExperiment, loadExperiment, withOverrides } from "../dsl/experiment.ts";
import { frozenBackbone } from "../dsl/training.ts";
import { train, type TrainOptions } from "../train/train.ts";
import type { Provider } from "../runtime/execute.ts";
import { BOUNDS, experimentArgument, intFlag, pathFlag } from "./flag_schema.ts";
import { TASK } from "./usage_error.ts";
import { mpiWorld } from "../runtime/mpi.ts";
import { checkDataParallel, checkRankCount } from "../train/data_parallel.ts";
import {
  abortLines,
  agreedFailure,
  currentLaunch,
  DEFAULT_RANK_WORKERS,
  defaultRankThreads,
  launchRanks,
  RankCountFlagMismatch,
  sayNow,
} from "./ranks.ts";

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
  ranks: intFlag(
    "ranks",
    BOUNDS.ranks,
    "train on N processes of this machine (runs mpirun -np N; needs Open MPI): each takes 1/N of every " +
      "batch of train.batchSize, same numbers as one process. Under mpirun or srun --mpi=pmix, the ranks " +
      "come from the launcher",
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
    // The experiment with the command line's overrides; a frozen backbone is checked against the rest of
    // the spec (e.g. the independent scheme's ranker).
    const experiment = Effect.gen(function* () {
      const overridden = withOverrides(
        yield* loadExperiment(a.experiment),
        opt(a.steps),
        opt(a.seed),
        draws === undefined ? undefined : frozenBackbone({ draws }),
      );
      return draws === undefined ? overridden : yield* decodeExperiment(overridden, a.experiment);
    });
    const launch = yield* currentLaunch();
    const ranks = opt(a.ranks);
    if (ranks !== undefined && ranks > 1 && launch === undefined) {
      // Loaded once here, so that a spec that does not load or split is one line, not one per rank.
      const e = yield* experiment;
      yield* checkRankCount(e.train.batchSize, ranks);
      yield* checkDataParallel(e, ranks);
      const code = yield* launchRanks(ranks, Deno.args);
      return yield* Effect.sync(() => Deno.exit(code));
    }
    if (ranks !== undefined && launch !== undefined && ranks !== launch.size) {
      return yield* new RankCountFlagMismatch({ flag: ranks, launch });
    }
    const e = yield* experiment;
    const parallel = launch !== undefined && launch.size > 1 ? launch : undefined;
    if (parallel) yield* checkRankCount(e.train.batchSize, parallel.size);
    const options: TrainOptions = {
      out: opt(a.out),
      resume: a.resume,
      extendSteps: opt(a.extendSteps),
      provider: a.provider as Provider,
      threads: opt(a.threads) ?? (parallel ? defaultRankThreads(parallel) : undefined),
      workers: opt(a.workers) ?? (parallel ? DEFAULT_RANK_WORKERS : undefined),
      evalLimit: opt(a.evalLimit),
      featureCache: opt(a.featureCache),
    };
    const r = parallel
      ? yield* Effect.scoped(Effect.gen(function* () {
        const world = yield* mpiWorld(parallel);
        // A failure the other ranks do not share ends the job here, before MPI_Finalize would wait for
        // ranks that wait for this one.
        return yield* train(e, { ...options, dataParallel: { collective: world } }).pipe(
          Effect.tapCause((cause) => {
            const failure = Cause.findErrorOption(cause);
            if (Option.isSome(failure) && agreedFailure(failure.value)) return Effect.void;
            return Effect.sync(() => {
              const lines = Option.isSome(failure)
                ? abortLines(world.rank, failure.value)
                : [`rank ${world.rank}: ${Cause.pretty(cause).split("\n")[0]}`];
              for (const line of lines) console.error(line);
              world.abort(1);
            });
          }),
          // A failure all ranks share is said now: MPI_Finalize may not return when mpirun is ending the
          // job (it stops the ranks on Ctrl-C with SIGTERM, then kills them).
          Effect.catch((failure) => Effect.fail(sayNow(failure))),
        );
      }))
      : yield* train(e, options);
    if (parallel && parallel.rank !== 0) return;
    yield* Console.log(`run: ${r.runDir}${r.report ? `\nreport: ${r.report}` : ""}`);
  })).pipe(Command.withDescription("Train an experiment; resumable, reproducible, checkpointed."));
