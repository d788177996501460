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
 * The program is small named steps over two records: `Run` (what is fixed once set up: data, executor,
 * kind, folder) and `Loop` (what changes from step to step), passed from one step to the next.
 */
import { Data, Effect, Stream } from "effect";
import { join } from "node:path";
import type { AnyExperiment } from "../dsl/experiment.ts";
import { learningRate } from "../dsl/training.ts";
import { imageLevelShares, imageLevelSources } from "../dsl/dataset.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { trainShapes } from "../interpret/shapes.ts";
import { pretrainedValues } from "../interpret/pretrained.ts";
import { trainLoader } from "../data/loader.ts";
import { mixedTrainLoader, openImageLevel } from "../data/mixed_loader.ts";
import { openDataset } from "../data/open.ts";
import { validateSplit } from "../data/validate.ts";
import type { Batch, Position } from "../data/batch.ts";
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
import {
  appendLines,
  CHECKPOINTS,
  checkRunFolder,
  EXAMPLES,
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
  /** Aborted by Ctrl-C or SIGTERM: the step in progress finishes, a checkpoint is written, training stops. */
  readonly interrupt: AbortController;
  readonly processStart: number;
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
    if (imageLevel) yield* openImageLevel(imageLevel, e.model.classes);
    const pixelBatch = imageLevelShares(e.train.batchSize, imageLevelSources(imageLevel)).pixel;
    // One train at a time per folder, held until the run's scope closes (success, failure, interruption).
    const lock = yield* acquireRunLock(dir);
    // Checked before the (slow) compilation, written only after the sessions have opened: a run that
    // cannot start (an unavailable provider) leaves no folder behind.
    yield* checkRunFolder(dir, e, { resume, extend });
    const print = options.print ?? ((line: string) => console.error(line));
    if (lock.recovered) yield* say({ dir, print }, lock.recovered);
    const { graph, stages } = training.stages(trainShapes(e), optimizerConfig(e.train));
    const p = plan(e.name, graph, stages);
    const ex = yield* execute(p, { seed: e.train.seed, provider, threads: options.threads });
    // Read before anything is written, so that a weights file that does not fit leaves no run folder.
    const pretrained = yield* pretrainedValues(e.model, graph);
    yield* prepareRunFolder(dir, e, { resume, extend, provider, threads: options.threads });
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
      interrupt,
      processStart: performance.now(),
    } satisfies Run;
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
    if (run.resume) {
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
      if (run.pretrained.size > 0) {
        yield* log(run, `initialized ${run.pretrained.size} parameters from the pretrained backbone`);
      }
    }
    return loop;
  });

/** Checkpoint: the state (read back from the device if it lives there) and the loop's position. */
const checkpoint = (
  run: Run,
  loop: Loop,
  best?: { metric: string; value: number; higherIsBetter: boolean },
) =>
  Effect.gen(function* () {
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
  run.training.tallyLine ? log(run, run.training.tallyLine(loop.tally)) : Effect.void;

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
const trainLine = (run: Run, loop: Loop, batch: Batch, lr: number) => {
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
  };
};

/** Writes the interval's train line and starts the next interval. */
const logInterval = (run: Run, loop: Loop, batch: Batch, lr: number, progress: Progress) =>
  Effect.gen(function* () {
    const line = trainLine(run, loop, batch, lr);
    yield* appendLines(run.dir, METRICS, [JSON.stringify(line)]);
    progress.update(loop.step, line.loss, line.imagesPerSecond);
    return { ...loop, interval: { losses: {}, images: 0, started: performance.now() } } satisfies Loop;
  });

/**
 * Step: one batch through the plan (the kind's feeds, the learning rate, dropout noise), the losses
 * checked and summed into the interval; then the interval's log line, a periodic checkpoint, a periodic
 * validation, or a stop, when due.
 */
const step = (run: Run, progress: Progress, before: Loop, batch: Batch) =>
  Effect.gen(function* () {
    const t = run.e.train;
    const n = before.step + 1;
    const lr = learningRate(t.schedule, t.optimizer.lr, n, t.steps);
    const kind = run.training.feeds(batch, before.tally);
    const feeds: Record<string, Value> = {
      images: value("float32", batch.images, [batch.batchSize, 3, batch.height, batch.width]),
      lr: scalar(lr),
      step: scalar(n),
      ...kind.feeds,
    };
    for (const f of run.plan.feeds) if (f.name.startsWith(NOISE)) feeds[f.name] = noiseFeed(t.seed, n, f);
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
      interval: { ...before.interval, losses, images: before.interval.images + batch.batchSize },
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
      yield* checkpoint(run, loop, (yield* validate(run, loop, progress, false)).best);
    }
    if (run.interrupt.signal.aborted || n === run.options.stopAfter) {
      const file = yield* checkpoint(run, loop);
      progress.done();
      return yield* new Stopped({ step: n, checkpoint: file });
    }
    return loop;
  });

/** The training batches from the loop's position on, as many as the remaining steps. */
const batches = (run: Run, loop: Loop) => {
  const { e, options } = run;
  const loaderOptions = {
    batchSize: e.train.batchSize,
    seed: e.train.seed,
    start: loop.position,
    workers: options.workers,
    panoptic: run.training.loader.panoptic,
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
    const run = yield* setup(experiment, options);
    const restored = yield* restore(run);
    const progress = progressReporter(run.e.train.steps, restored.step, run.print);
    const remaining = run.e.train.steps - restored.step;
    if (remaining > 0) {
      yield* log(run, `training ${run.e.name} for ${remaining} steps from step ${restored.step}`);
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
    return options.skipFinalEval || !run.evaluation ? trained : yield* finish(run, loop, progress, last);
  }));
