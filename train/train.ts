/**
 * The training loop, as an Effect program, for every model kind.
 *
 * One step = one run of the training plan (forward, losses, backward and optimizer update) on the next
 * batch of the loader stream. What differs between kinds — the plan's stages, a batch's feeds, the loss
 * names, the evaluation and the metric the best checkpoint is chosen by — comes from the model kind's
 * record (`kinds/`); this file never asks which kind it trains.
 *
 * Everything a step depends on is a function of (experiment, seed, step, loader position): the batch
 * (the loader is seeded per sample), dropout noise (drawn from `random(seed, NOISE, step, site)`), the
 * learning rate (the schedule at `step`). A checkpoint stores parameters, optimizer moments and the next
 * loader position, so a resumed run continues with bitwise the same numbers as a run that never stopped
 * (same provider and threads).
 *
 * With `train.frozenBackbone` the kind's plan leaves the backbone frozen (no gradient, no update); with
 * N ≥ 1 draws its steps read the backbone's outputs from a feature cache (`feature_cache.ts`: found or
 * built during setup, before the run folder is written) instead of images, from a loader that follows
 * the same training order and picks each sample's draw from the run's seed.
 *
 * The program is small named steps over two records: `Run` (what is fixed once set up: data, executor,
 * kind, folder) and `Loop` (what changes from step to step), passed from one step to the next.
 */
import { Data, Effect, Stream } from "effect";
import { join } from "node:path";
import type { AnyExperiment } from "../dsl/experiment.ts";
import { learningRate } from "../dsl/training.ts";
import { imageLevelShares, imageLevelSources } from "../dsl/dataset.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { inferenceShapes, trainShapes } from "../interpret/shapes.ts";
import { pretrainedValues } from "../interpret/pretrained.ts";
import { trainLoader } from "../data/loader.ts";
import { mixedTrainLoader, openImageLevel } from "../data/mixed_loader.ts";
import { openDataset } from "../data/open.ts";
import { validateSplit } from "../data/validate.ts";
import type { Batch, FeatureBatch, Position } from "../data/batch.ts";
import type { DataError } from "../data/errors.ts";
import {
  cachedMixedTrainLoader,
  cachedTrainLoader,
  type FeatureCache,
  type FeatureCacheError,
} from "../data/feature_cache.ts";
import type { ImageLevelSource } from "../data/image_level.ts";
import { type BackboneMode, featureName, variableState } from "../interpret/frozen_backbone.ts";
import { writeFileAtomic } from "../io/atomic_write.ts";
import { type CacheUse, ensureFeatureCache } from "./feature_cache.ts";
import type { Dataset } from "../data/dataset.ts";
import { execute, type Executor, type Provider } from "../runtime/execute.ts";
import { type Plan, plan } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import type { Graph } from "../ir/graph.ts";
import { NOISE } from "../layers/dropout.ts";
import {
  bestMetric,
  type Evaluation,
  evaluationLine,
  evaluationMetrics,
  writeEvaluationRecord,
} from "../eval/evaluation.ts";
import { parametersDigest } from "../eval/parameters_digest.ts";
import { bindKind, kindPart } from "../kinds/registry.ts";
import type { Training } from "../kinds/kind.ts";
import { ExperimentDataMismatch } from "../kinds/checks.ts";
import { movedAsideLine, saveCheckpoint } from "./checkpoint.ts";
import { checkpointTensors, LOOP_STATE_KEY, type LoopState, noiseFeed } from "./run_state.ts";
import { acquireRunLock } from "./run_lock.ts";
import { resumeRun } from "./resume.ts";
import { type ReduceStats, reduceStats, STOP_REQUESTED } from "../host/all_reduce.ts";
import {
  agreeOnSetup,
  checkDataParallel,
  checkRankCount,
  type DataParallelTraining,
  DataParallelUnsupported,
  shareRankZeroState,
} from "./data_parallel.ts";
import {
  appendLines,
  CHECKPOINTS,
  checkRunFolder,
  EXAMPLES,
  FEATURE_CACHE_RECORD,
  LOG,
  METRICS,
  prepareRunFolder,
  readRunSpec,
  runDirFor,
  RunFolderError,
} from "./run_folder.ts";
import { loadRun } from "./load_run.ts";
import { writeReport } from "./report.ts";
import { type Progress, progressReporter } from "./progress.ts";

export { ExperimentDataMismatch } from "../kinds/checks.ts";

/** A loss term became NaN or infinite; the last checkpoint is left as it was. */
export class NonFiniteLoss extends Data.TaggedError("NonFiniteLoss")<{
  readonly step: number;
  readonly term: string;
  readonly value: number;
}> {
  override get message(): string {
    return `step ${this.step}: loss term "${this.term}" is ${this.value}; stopped, the last checkpoint is kept`;
  }
}

/** Training stopped on request (Ctrl-C, SIGTERM or `stopAfter`) after writing a checkpoint. */
export class Stopped
  extends Data.TaggedError("Stopped")<{ readonly step: number; readonly checkpoint: string }> {
  override get message(): string {
    return `stopped at step ${this.step}; checkpoint ${this.checkpoint}; continue with --resume`;
  }
}

export interface TrainOptions {
  readonly out?: string;
  readonly resume?: boolean;
  readonly provider?: Provider;
  readonly threads?: number;
  readonly workers?: number;
  /**
   * Every evaluation of the run (periodic and final) looks at only the first this many images of the
   * split: best-checkpoint selection and the final table are judged on one image set, recorded with
   * each result.
   */
  readonly evalLimit?: number;
  /**
   * Continue the run in the folder to this many steps in total (implies resume; the experiment may
   * differ from the folder's only in `train.steps`). The schedule is recomputed over the new total.
   */
  readonly extendSteps?: number;
  /** Write a checkpoint and stop after this step (as Ctrl-C would). */
  readonly stopAfter?: number;
  /** Skip the final evaluation and report. */
  readonly skipFinalEval?: boolean;
  /** Progress output (default: stderr, a live line on a TTY). */
  readonly print?: (line: string) => void;
  /**
   * Train as one rank of a data-parallel run (train/data_parallel.ts): each rank takes its shard of every
   * global batch (`train.batchSize`), gradients are averaged over the ranks, rank 0 writes the run folder.
   * With one rank (or none given) the run is an ordinary one, with the fused step graph.
   */
  readonly dataParallel?: DataParallelTraining;
  /** Where frozen-backbone feature caches live (default `runs/.feature-cache`). */
  readonly featureCache?: string;
}

export interface TrainResult {
  readonly runDir: string;
  readonly step: number;
  /** The final evaluation, as the model kind's evaluation returns it (e.g. `EvaluationResult`). */
  readonly evaluation?: unknown;
  /** The final evaluation's headline metric (e.g. mIoU in percent) and its image count. */
  readonly headline?: { readonly name: string; readonly value: number; readonly images: number };
  readonly report?: string;
}

/** What is fixed once a run is set up. */
interface Run {
  readonly e: AnyExperiment;
  readonly dir: string;
  readonly options: TrainOptions;
  readonly provider: Provider;
  readonly print: (line: string) => void;
  readonly training: Training<unknown>;
  readonly evaluation: Evaluation<unknown> | undefined;
  /** The training split (its classes judge evaluations too) and the evaluation split. */
  readonly trainData: Dataset;
  readonly evalData: Dataset | undefined;
  readonly graph: Graph;
  readonly plan: Plan;
  readonly ex: Executor;
  readonly lossNames: readonly string[];
  /** Images of a batch that advance the training order (a mixed batch's pixel-labelled part). */
  readonly pixelBatch: number;
  readonly checkpoints: string;
  readonly resume: boolean;
  readonly extend: boolean;
  readonly pretrained: ReadonlyMap<
    string,
    { readonly data: Float32Array; readonly shape: readonly number[] }
  >;
  /** The frozen backbone's feature cache the steps read (`train.frozenBackbone.draws` ≥ 1). */
  readonly cache:
    | {
      readonly cache: FeatureCache;
      readonly use: CacheUse;
      /** With `data.imageLevel`: each image-level source's cache, in order, read beside the split's. */
      readonly imageLevel: readonly { readonly cache: FeatureCache; readonly use: CacheUse }[];
      /** The digest of the backbone it was built from, and the backbone's state names. */
      readonly weights: string;
      readonly backbone: readonly string[];
    }
    | undefined;
  /** Aborted by Ctrl-C or SIGTERM: the step in progress finishes, a checkpoint is written, training stops. */
  readonly interrupt: AbortController;
  readonly processStart: number;
  /** The ranks of a data-parallel run (absent: one process). */
  readonly ranks?: DataParallelTraining & { readonly stats: ReduceStats };
  /** Whether this process writes the run folder and prints: rank 0, or the only process. */
  readonly lead: boolean;
}

/** What changes from step to step. */
interface Loop {
  readonly step: number;
  /** Where the loader continues. */
  readonly position: Position;
  /** Sums of the current logging interval. */
  readonly interval: {
    readonly losses: Readonly<Record<string, number>>;
    readonly images: number;
    readonly started: number;
  };
  /** Wall-clock seconds trained before this process (carried across resumptions). */
  readonly elapsedBefore: number;
  /** The kind's running tally (e.g. truncated panoptic masks), counted since this process started. */
  readonly tally: unknown;
}

const scalar = (v: number) => value("float32", Float32Array.of(v), []);
const scalarOf = (v: readonly number[]) => value("float32", Float32Array.from(v), [v.length]);

/** The position of the batch after `p` in an epoch of `n` samples in batches of `b` (dropLast). */
export const nextPosition = (p: Position, n: number, b: number): Position =>
  p.index + 2 * b > Math.floor(n / b) * b
    ? { epoch: p.epoch + 1, index: 0 }
    : { epoch: p.epoch, index: p.index + b };

/** The experiment with the folder's run extended to `steps` in total (`--extend-steps`). */
const extendedExperiment = (dir: string, e: AnyExperiment, steps: number) =>
  Effect.gen(function* () {
    const saved = (yield* readRunSpec(dir)) as { train?: { steps?: number } } | undefined;
    const before = saved?.train?.steps;
    if (before === undefined) {
      return yield* new RunFolderError({ dir, reason: "nothing to extend: no experiment.json" });
    }
    if (steps < before) {
      return yield* new RunFolderError({
        dir,
        reason: `--extend-steps ${steps}: the run already has ${before} steps; extending cannot shorten it`,
      });
    }
    return { ...e, train: { ...e.train, steps } };
  });

const logLine = (dir: string, line: string) => appendLines(dir, LOG, [`${new Date().toISOString()} ${line}`]);
const log = (run: Run, line: string) => logLine(run.dir, line);
/** A line for train.log and the user both (a repair, a recovered lock). */
const say = (run: Pick<Run, "dir" | "print">, line: string) =>
  Effect.andThen(logLine(run.dir, line), Effect.sync(() => run.print(line)));

const elapsed = (run: Run, loop: Loop) => loop.elapsedBefore + (performance.now() - run.processStart) / 1000;

/**
 * Setup: the kind, the data and its checks (the training split's classes, the images every evaluation
 * will read), the compiled plan and its executor, the run folder. Everything that can refuse the run does
 * so before the folder is written: a run that cannot start leaves no folder behind.
 */
const setup = (experiment: AnyExperiment, options: TrainOptions) =>
  Effect.gen(function* () {
    const provider = options.provider ?? "cpu";
    const parallel = options.dataParallel;
    const ranks = parallel && parallel.collective.size > 1
      ? { ...parallel, stats: parallel.stats ?? reduceStats() }
      : undefined;
    // Rank 0 (or the only process) writes the run folder; the other ranks write nothing.
    const lead = !ranks || ranks.collective.rank === 0;
    // The folder of the experiment as given; an extension keeps the folder and changes the step count.
    const dir = runDirFor(experiment, options.out);
    const extend = options.extendSteps !== undefined;
    const e = extend ? yield* extendedExperiment(dir, experiment, options.extendSteps!) : experiment;
    const resume = (options.resume ?? false) || extend;
    const bound = yield* bindKind(e, loadRun);
    const training = yield* kindPart(bound, "training", "train");
    const trainData = yield* openDataset(e.data.dataset, e.data.dataset.trainSplit);
    yield* training.checkData(trainData);
    // The images every evaluation of the run reads are checked now, not after the training they judge.
    const evaluates = options.skipFinalEval !== true || e.train.evalEvery > 0;
    const evaluation = evaluates ? bound.evaluation : undefined;
    const evalData = evaluation
      ? yield* Effect.andThen(
        validateSplit(e.data.dataset, e.data.dataset.testSplit, { limit: options.evalLimit }),
        openDataset(e.data.dataset, e.data.dataset.testSplit),
      )
      : undefined;
    // A mixed batch's position is its pixel-labelled part's; the image-level sources are read (and every
    // bad tag reported) before the slow compilation.
    const imageLevel = e.data.imageLevel;
    const openedSources = imageLevel ? yield* openImageLevel(imageLevel, e.model.classes) : [];
    const pixelBatch = imageLevelShares(e.train.batchSize, imageLevelSources(imageLevel)).pixel;
    // A rank's graphs are traced at its shard of the global batch.
    const shapes = ranks
      ? inferenceShapes(e, yield* checkRankCount(e.train.batchSize, ranks.collective.size))
      : trainShapes(e);
    const dataParallelStages = ranks && training.dataParallelStages;
    if (ranks && !dataParallelStages) {
      return yield* new DataParallelUnsupported({
        reason: `model: a ${e.model._tag} trains in one process only (its kind has no data-parallel stages)`,
      });
    }
    if (ranks) yield* checkDataParallel(e, ranks.collective.size);
    // One train at a time per folder, held until the run's scope closes (success, failure, interruption).
    const lock = lead ? yield* acquireRunLock(dir) : { recovered: undefined };
    // Checked before the (slow) compilation, written only after the sessions have opened: a run that
    // cannot start (an unavailable provider) leaves no folder behind.
    if (lead) yield* checkRunFolder(dir, e, { resume, extend });
    const print = lead ? options.print ?? ((line: string) => console.error(line)) : () => {};
    if (lock.recovered) yield* say({ dir, print }, lock.recovered);
    const mode = backboneMode(e);
    if (mode !== "trained" && !training.features) {
      return yield* new ExperimentDataMismatch({
        path: "train.frozenBackbone",
        reason: `a ${bound.kind.tag} (${bound.kind.task}) has no feature graph to freeze its backbone at`,
      });
    }
    const { graph, stages } = dataParallelStages
      ? dataParallelStages(shapes, optimizerConfig(e.train), ranks!)
      : training.stages(shapes, optimizerConfig(e.train), mode);
    const p = plan(e.name, graph, stages);
    const ex = yield* execute(p, { seed: e.train.seed, provider, threads: options.threads });
    // Read before anything is written, so that a weights file that does not fit leaves no run folder.
    // The plan's state, not one graph: a cached plan holds its frozen backbone in a host stage.
    const pretrained = yield* pretrainedValues(e.model, p);
    // Found or built before the folder is written: a cache that cannot be built leaves no run folder.
    const cache = mode === "cached"
      ? yield* featureCache(e, training, ex, pretrained, trainData, openedSources, options, print)
      : undefined;
    if (lead) {
      yield* prepareRunFolder(dir, e, {
        resume,
        extend,
        provider,
        threads: options.threads,
        ranks: ranks?.collective.size ?? 1,
      });
    }
    if (cache) yield* recordCache(dir, cache, print);
    // Frozen state from another run (the independent scheme's ranker) enters as it is.
    for (const [name, v] of training.frozen?.state ?? []) {
      if (!graph.lookup(name)) {
        return yield* new ExperimentDataMismatch({
          path: training.frozen!.source,
          reason: `"${name}" has no place in the graph`,
        });
      }
      // A declared variable the plan does not need (e.g. ξ's class embeddings) is not part of it.
      if (ex.state.has(name)) ex.state.set(name, v);
    }
    // Ctrl-C, or SIGTERM (what Slurm sends on scancel and at a time limit, before its SIGKILL).
    const interrupt = new AbortController();
    const onSignal = () => interrupt.abort();
    const signals = ["SIGINT", "SIGTERM"] as const;
    yield* Effect.acquireRelease(
      Effect.sync(() => signals.forEach((s) => Deno.addSignalListener(s, onSignal))),
      () => Effect.sync(() => signals.forEach((s) => Deno.removeSignalListener(s, onSignal))),
    );
    return {
      e,
      dir,
      options,
      provider,
      print,
      training,
      evaluation,
      trainData,
      evalData,
      graph,
      plan: p,
      ex,
      lossNames: training.lossNames(graph),
      pixelBatch,
      checkpoints: join(dir, CHECKPOINTS),
      resume,
      extend,
      pretrained,
      cache,
      interrupt,
      processStart: performance.now(),
      ...(ranks ? { ranks } : {}),
      lead,
    } satisfies Run;
  });

/** How the experiment's plan treats the backbone (interpret/frozen_backbone.ts). */
const backboneMode = (e: AnyExperiment): BackboneMode => {
  const frozen = e.train.frozenBackbone;
  return frozen === undefined ? "trained" : frozen.draws > 0 ? "cached" : "frozen";
};

/**
 * The cache a cached plan reads, found or built from the frozen backbone's values as the run starts
 * (the pretrained file's, else the seed's initialization; a resumed run's checkpoint holds the same
 * values, since nothing updates them, and `restore` checks that it does).
 */
const featureCache = (
  e: AnyExperiment,
  training: Training<unknown>,
  ex: Executor,
  pretrained: Run["pretrained"],
  trainData: Dataset,
  imageLevel: readonly ImageLevelSource[],
  options: TrainOptions,
  print: (line: string) => void,
) =>
  Effect.gen(function* () {
    const features = training.features!(trainShapes(e));
    const backbone = new Map<string, Value>();
    for (const { name } of variableState(features)) {
      const p = pretrained.get(name);
      backbone.set(name, p ? value("float32", p.data, p.shape) : ex.state.get(name)!);
    }
    const request = {
      e,
      features,
      backbone,
      dataset: trainData,
      panoptic: training.loader.panoptic,
      root: options.featureCache,
      provider: options.provider,
      threads: options.threads,
      workers: options.workers,
      print,
    };
    const found = yield* ensureFeatureCache(request);
    // Each image-level source: a cache of its own (its images, under draws of their own).
    const images = yield* Effect.forEach(imageLevel, (source) =>
      ensureFeatureCache({ ...request, imageLevel: source }));
    return {
      ...found,
      imageLevel: images,
      weights: parametersDigest(backbone),
      backbone: [...backbone.keys()],
    };
  });

/**
 * `feature-cache.json` in the run folder: the cache this run reads (and, under `imageLevel`, the
 * image-level source's), and train.log's line about each.
 */
const recordCache = (
  dir: string,
  cache: { readonly use: CacheUse; readonly imageLevel: readonly { readonly use: CacheUse }[] },
  print: (line: string) => void,
) =>
  Effect.gen(function* () {
    // One image-level source is recorded as an object (as before sources became a list), several as a list.
    const il = cache.imageLevel.map((c) => c.use);
    const record = { ...cache.use, ...(il.length === 0 ? {} : { imageLevel: il.length === 1 ? il[0] : il }) };
    yield* writeFileAtomic(join(dir, FEATURE_CACHE_RECORD), JSON.stringify(record, null, 2) + "\n").pipe(
      Effect.mapError((err) => new RunFolderError({ dir, reason: err.message })),
    );
    const uses: [CacheUse, string][] = [
      [cache.use, ""],
      ...cache.imageLevel.map((c): [CacheUse, string] => [c.use, "image-level "]),
    ];
    for (const [use, what] of uses) {
      const line = `feature cache ${use.dir} (key ${use.key}): ${use.draws} draws of ${use.samples} ${what}` +
        `images, ${(use.bytes / 1e6).toFixed(1)} MB, ${
          use.built ? "built by this run" : "built earlier"
        } in ` +
        `${use.buildSeconds.toFixed(1)} s`;
      yield* logLine(dir, line);
      print(line);
    }
  });

/**
 * Restore: when resuming, first repair what a killed run left (temp files, a corrupt newest checkpoint,
 * a torn or too long metrics.jsonl; train/resume.ts), saying each repair, then parameters, optimizer
 * moments, the loader position and the logging interval from the newest usable checkpoint (none: step
 * 0). A run at step 0 starts its backbone from the pretrained file; a resumed one has it in its checkpoint.
 */
const restore = (run: Run) =>
  Effect.gen(function* () {
    const fresh: Loop = {
      step: 0,
      position: { epoch: 0, index: 0 },
      interval: { losses: {}, images: 0, started: performance.now() },
      elapsedBefore: 0,
      tally: run.training.tally,
    };
    let loop = fresh;
    if (run.resume && run.lead) {
      const resumed = yield* resumeRun(run.dir, run.ex.state);
      for (const line of resumed.said) yield* say(run, line);
      const saved = resumed.loop;
      loop = {
        ...fresh,
        step: resumed.step,
        ...(saved
          ? {
            position: saved.position,
            interval: {
              ...fresh.interval,
              losses: { ...saved.interval.losses },
              images: saved.interval.images,
            },
            elapsedBefore: saved.elapsedSeconds,
          }
          : {}),
      };
      yield* log(
        run,
        `resumed from ${resumed.checkpoint ?? "the start (no checkpoint yet)"} at step ${loop.step}`,
      );
      run.print(
        `resuming ${run.dir} from step ${loop.step}${run.extend ? ` to ${run.e.train.steps} steps` : ""}`,
      );
    }
    if (loop.step === 0) {
      for (const [name, v] of run.pretrained) run.ex.state.set(name, value("float32", v.data, v.shape));
      if (run.pretrained.size > 0 && run.lead) {
        yield* log(run, `initialized ${run.pretrained.size} parameters from the pretrained backbone`);
      }
    }
    // The cache was built from the backbone a fresh run starts from; a checkpoint must hold that one.
    if (run.cache) {
      const names = new Set(run.cache.backbone);
      const digest = parametersDigest(new Map([...run.ex.state].filter(([n]) => names.has(n))));
      if (digest !== run.cache.weights) {
        return yield* new RunFolderError({
          dir: run.dir,
          reason:
            `the checkpoint's frozen backbone differs from the one the feature cache ${run.cache.use.dir} ` +
            "was built from (the pretrained file changed since this run started?); start a new run",
        });
      }
    }
    if (!run.ranks) return loop;
    // Every rank continues from rank 0's state and position (only rank 0 reads the run folder).
    const shared = yield* shareRankZeroState(
      run.ranks.collective,
      run.plan.state.map((s) => s.name),
      run.ex.state,
      { ...loop, interval: { ...loop.interval, started: 0 } },
    );
    return { ...shared, interval: { ...shared.interval, started: performance.now() } } satisfies Loop;
  });

/** Checkpoint: the state (read back from the device if it lives there) and the loop's position. */
const checkpoint = (
  run: Run,
  loop: Loop,
  best?: { metric: string; value: number; higherIsBetter: boolean },
) =>
  Effect.gen(function* () {
    // Rank 0 alone writes the run folder: the other ranks hold the same state.
    if (!run.lead) return "";
    const saved: LoopState = {
      position: loop.position,
      interval: { losses: loop.interval.losses, images: loop.interval.images },
      elapsedSeconds: elapsed(run, loop),
    };
    // On webgpu the state lives on the device: a checkpoint is one of the few reasons to read it back.
    // A state that went NaN / ±Infinity is refused here, so the last checkpoint stays a usable one.
    const written = yield* saveCheckpoint(run.checkpoints, loop.step, {
      tensors: yield* checkpointTensors(yield* run.ex.hostState(), loop.step),
      metadata: { [LOOP_STATE_KEY]: JSON.stringify(saved), "train.seed": JSON.stringify(run.e.train.seed) },
    }, { keepLast: run.e.train.keepCheckpoints, best });
    for (const m of written.movedAside) yield* say(run, movedAsideLine(m));
    yield* log(run, `checkpoint ${written.file}`);
    return written.file;
  });

/** The kind's line about its tally (panoptic truncation), logged at checkpoints. */
const logTally = (run: Run, loop: Loop) =>
  run.training.tallyLine && run.lead ? log(run, run.training.tallyLine(loop.tally)) : Effect.void;

/**
 * Validate: the kind's evaluation of the current state on the run's evaluation images (every evaluation
 * of a run sees the same images, so "best" and the final table are comparable), its metrics line, and
 * the metric the best checkpoint is chosen by.
 */
const validate = (run: Run, loop: Loop, progress: Progress, final: boolean) =>
  Effect.gen(function* () {
    const evaluation = run.evaluation!, split = run.e.data.dataset.testSplit;
    const result = yield* evaluation.run(run.ex.state, run.evalData!, {
      split,
      mode: run.e.eval.mode,
      oracle: false,
      provider: run.provider,
      threads: run.options.threads,
      workers: run.options.workers,
      limit: run.options.evalLimit,
      examples: final ? run.e.eval.examples : 0,
      examplesDir: join(run.dir, EXAMPLES),
    });
    yield* appendLines(run.dir, METRICS, [
      JSON.stringify(evaluationMetrics(evaluation, loop.step, split, result)),
    ]);
    const line = evaluationLine(evaluation, loop.step, split, result);
    yield* log(run, line);
    progress.done();
    run.print(line);
    return { result, best: bestMetric(evaluation, split, result) };
  });

/** The train line of a logging interval that ends at this step. */
const trainLine = (run: Run, loop: Loop, batch: Batch | FeatureBatch, lr: number) => {
  const t = run.e.train;
  const steps = loop.step % t.logEvery === 0 ? t.logEvery : loop.step % t.logEvery;
  const mean = (name: string) => loop.interval.losses[name] / steps;
  const [total, ...terms] = run.lossNames;
  return {
    kind: "train",
    step: loop.step,
    epoch: batch.position.epoch,
    lr,
    loss: mean(total),
    terms: Object.fromEntries(terms.map((l) => [l.replace("loss.", ""), mean(l)])),
    imagesPerSecond: loop.interval.images / ((performance.now() - loop.interval.started) / 1000),
    elapsedSeconds: elapsed(run, loop),
    ...(run.ranks ? allReduceFields(run.ranks.stats, steps) : {}),
  };
};

/** A data-parallel run's all-reduce figures per step of the interval (wall-clock fields); resets them. */
const allReduceFields = (stats: ReduceStats, steps: number) => {
  const fields = { allReduceSeconds: stats.stageSeconds / steps, allReduceBytes: stats.bytes / steps };
  Object.assign(stats, reduceStats());
  return fields;
};

/** Writes the interval's train line and starts the next interval. */
const logInterval = (run: Run, loop: Loop, batch: Batch | FeatureBatch, lr: number, progress: Progress) =>
  Effect.gen(function* () {
    const line = trainLine(run, loop, batch, lr);
    if (run.lead) yield* appendLines(run.dir, METRICS, [JSON.stringify(line)]);
    progress.update(loop.step, line.loss, line.imagesPerSecond);
    return { ...loop, interval: { losses: {}, images: 0, started: performance.now() } } satisfies Loop;
  });

/**
 * Step: one batch through the plan (the kind's feeds, the learning rate, dropout noise), the losses
 * checked and summed into the interval; then the interval's log line, a periodic checkpoint, a periodic
 * validation, or a stop, when due.
 */
const step = (run: Run, progress: Progress, before: Loop, batch: Batch | FeatureBatch) =>
  Effect.gen(function* () {
    const t = run.e.train;
    const n = before.step + 1;
    const lr = learningRate(t.schedule, t.optimizer.lr, n, t.steps);
    const kind = run.training.feeds(batch, before.tally);
    const feeds: Record<string, Value> = {
      ...inputFeeds(batch),
      lr: scalar(lr),
      step: scalar(n),
      ...kind.feeds,
    };
    const shard = run.ranks && { rank: run.ranks.collective.rank, ranks: run.ranks.collective.size };
    for (const f of run.plan.feeds) {
      if (f.name.startsWith(NOISE)) feeds[f.name] = noiseFeed(t.seed, n, f, shard);
    }
    // A rank asked to stop (Ctrl-C) stops every rank after this step: the flag is summed with the gradients.
    if (run.ranks) feeds[STOP_REQUESTED] = scalarOf([run.interrupt.signal.aborted ? 1 : 0]);
    const out = yield* run.ex.run(feeds);
    const losses = { ...before.interval.losses };
    for (const name of run.lossNames) {
      const v = out.get(name)!.data[0] as number;
      if (!Number.isFinite(v)) return yield* new NonFiniteLoss({ step: n, term: name, value: v });
      losses[name] = (losses[name] ?? 0) + v;
    }
    const stepped: Loop = {
      ...before,
      step: n,
      position: nextPosition(batch.position, run.trainData.samples.length, run.pixelBatch),
      interval: {
        ...before.interval,
        losses,
        images: before.interval.images + batch.batchSize * (run.ranks?.collective.size ?? 1),
      },
      tally: kind.tally,
    };
    const loop = n % t.logEvery === 0 || n === t.steps
      ? yield* logInterval(run, stepped, batch, lr, progress)
      : stepped;
    if (n % t.checkpointEvery === 0 && n < t.steps) {
      yield* logTally(run, loop);
      yield* checkpoint(run, loop);
    }
    if (run.evaluation && t.evalEvery > 0 && n % t.evalEvery === 0 && n < t.steps) {
      if (run.lead) yield* checkpoint(run, loop, (yield* validate(run, loop, progress, false)).best);
      // The other ranks wait for rank 0's evaluation here, asleep, rather than spinning in the next step's
      // all-reduce beside it.
      if (run.ranks) yield* run.ranks.collective.barrier();
    }
    const stopRequested = run.ranks
      ? (out.get(STOP_REQUESTED)!.data[0] as number) > 0
      : run.interrupt.signal.aborted;
    if (stopRequested || n === run.options.stopAfter) {
      const file = yield* checkpoint(run, loop);
      progress.done();
      return yield* new Stopped({ step: n, checkpoint: file });
    }
    return loop;
  });

/** The images of a batch, or a frozen backbone's cached outputs in their place (`features.<i>`). */
const inputFeeds = (batch: Batch | FeatureBatch): Record<string, Value> =>
  "features" in batch
    ? Object.fromEntries(batch.features.map((f, i) => [featureName(i), value("float32", f.data, f.shape)]))
    : { images: value("float32", batch.images, [batch.batchSize, 3, batch.height, batch.width]) };

/** The training batches from the loop's position on, as many as the remaining steps. */
const batches = (
  run: Run,
  loop: Loop,
): Stream.Stream<Batch | FeatureBatch, DataError | FeatureCacheError> => {
  const { e, options } = run;
  if (run.cache) {
    const cached = { batchSize: e.train.batchSize, seed: e.train.seed, start: loop.position };
    const il = run.cache.imageLevel;
    return (il.length > 0
      ? cachedMixedTrainLoader(run.cache.cache, il.map((c) => c.cache), {
        ...cached,
        sources: imageLevelSources(e.data.imageLevel),
      })
      : cachedTrainLoader(run.cache.cache, cached)).pipe(Stream.take(e.train.steps - loop.step));
  }
  const loaderOptions = {
    batchSize: e.train.batchSize,
    seed: e.train.seed,
    start: loop.position,
    workers: options.workers,
    panoptic: run.training.loader.panoptic,
    ...(run.ranks ? { shard: { rank: run.ranks.collective.rank, ranks: run.ranks.collective.size } } : {}),
  };
  const imageLevel = e.data.imageLevel;
  return (imageLevel
    ? mixedTrainLoader(e.data.dataset, e.data.train, imageLevel, loaderOptions)
    : trainLoader(e.data.dataset, e.data.train, loaderOptions)).pipe(Stream.take(e.train.steps - loop.step));
};

/**
 * The final evaluation of the last checkpoint (`last`): best-checkpoint candidate, the run's own record
 * (`eval-<split>.json`), the table, and the report for kinds whose evaluations it shows.
 */
const finish = (run: Run, loop: Loop, progress: Progress, last: string) =>
  Effect.gen(function* () {
    const evaluation = run.evaluation!, split = run.e.data.dataset.testSplit;
    const { result, best } = yield* validate(run, loop, progress, true);
    yield* checkpoint(run, loop, best);
    yield* writeEvaluationRecord(
      run.dir,
      evaluation,
      result,
      {
        split,
        step: loop.step,
        checkpoint: last,
        mode: run.e.eval.mode,
        oracle: false,
        parameters: parametersDigest(yield* run.ex.hostState()),
      },
      run.evalData!,
      { runMode: run.e.eval.mode, limit: run.options.evalLimit, finalStep: run.e.train.steps },
    );
    run.print(evaluation.table(result, run.evalData!));
    const report = evaluation.report ? yield* writeReport(run.dir, { title: run.e.name }) : undefined;
    const trained: TrainResult = {
      runDir: run.dir,
      step: loop.step,
      evaluation: result,
      headline: { name: evaluation.headline.name, value: best.value, images: evaluation.images(result) },
      ...(report ? { report } : {}),
    };
    return trained;
  });

/**
 * Trains an experiment of any registered model kind: set up, restore, step through the remaining
 * batches, checkpoint, and (unless skipped) evaluate the last checkpoint.
 */
export const train = (experiment: AnyExperiment, options: TrainOptions = {}) =>
  Effect.scoped(Effect.gen(function* () {
    const parallel = options.dataParallel;
    // The ranks of a data-parallel run agree that every one of them set up before anything collective.
    const run = parallel && parallel.collective.size > 1
      ? yield* agreeOnSetup(parallel.collective, setup(experiment, options))
      : yield* setup(experiment, options);
    const restored = yield* restore(run);
    const progress = progressReporter(run.e.train.steps, restored.step, run.print);
    const remaining = run.e.train.steps - restored.step;
    if (remaining > 0 && run.lead) {
      const ranks = run.ranks ? ` on ${run.ranks.collective.size} ranks` : "";
      yield* log(run, `training ${run.e.name} for ${remaining} steps from step ${restored.step}${ranks}`);
    }
    const loop = remaining > 0
      ? yield* Stream.runFoldEffect(
        batches(run, restored),
        () => restored,
        (l, batch) => step(run, progress, l, batch),
      )
      : restored;
    if (remaining > 0) progress.done();
    yield* logTally(run, loop);
    const last = yield* checkpoint(run, loop);
    const trained: TrainResult = { runDir: run.dir, step: loop.step };
    // Rank 0 evaluates; the other ranks are done.
    return options.skipFinalEval || !run.evaluation || !run.lead
      ? trained
      : yield* finish(run, loop, progress, last);
  }));
