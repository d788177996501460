/**
 * The training loop, as an Effect program.
 *
 * One step = one run of the training plan (forward, losses, backward and optimizer update in one ONNX
 * graph) on the next batch of the loader stream. Everything a step depends on is a function of
 * (experiment, seed, step, loader position): the batch (the loader is seeded per sample), dropout noise
 * (drawn from `random(seed, NOISE, step, site)`), the learning rate (the schedule at `step`). A
 * checkpoint stores parameters, optimizer moments and the next loader position, so a resumed run
 * continues with bitwise the same numbers as a run that never stopped (same provider and threads).
 */
import { Data, Effect, Stream } from "effect";
import { join } from "node:path";
import type { Experiment } from "../dsl/experiment.ts";
import { IMAGE_LABELS, LOSS, LOSS_NAMES, PIXEL_LABELLED } from "../interpret/segmenter.ts";
import { trainingStages } from "../interpret/graphs.ts";
import * as panoptic from "../interpret/panoptic.ts";
import {
  countTruncation,
  NO_TRUNCATION,
  panopticTargets,
  stackTargets,
  truncationReport,
  type TruncationTotals,
} from "../data/panoptic_targets.ts";
import {
  evaluatePanoptic,
  formatPanopticTable,
  panopticEvalLine,
  type PanopticEvaluation,
  writePanopticRecord,
} from "../eval/panoptic_eval.ts";
import { learningRate } from "../dsl/training.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { trainLoader } from "../data/loader.ts";
import { mixedTrainLoader, openImageLevel } from "../data/mixed_loader.ts";
import { imageLevelShare } from "../dsl/dataset.ts";
import { openDataset } from "../data/open.ts";
import type { Batch, Position } from "../data/batch.ts";
import type { ClassTable } from "../data/classes.ts";
import { execute, type Provider } from "../runtime/execute.ts";
import { plan } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";
import { NOISE } from "../layers/dropout.ts";
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
import { evaluate, type EvaluationResult } from "../eval/evaluate.ts";
import { makeEvalRecord, toPercent, writeEvalRecord } from "../eval/eval_record.ts";
import { formatMetricsTable } from "../eval/metrics_table.ts";
import { baseNovelMIoU, novelMask } from "../eval/base_novel.ts";
import { writeReport } from "./report.ts";
import { type Progress, progressReporter } from "./progress.ts";
import { loadRanker } from "./ranker.ts";
import { type ExperimentFor, requireTask } from "../interpret/kinds.ts";
import { usesImageLabels } from "../dsl/model.ts";
import { pretrainedValues } from "../interpret/pretrained.ts";

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

/** The experiment does not fit its data (class count, ignore index). */
export class ExperimentDataMismatch extends Data.TaggedError("ExperimentDataMismatch")<{
  readonly path: string;
  readonly reason: string;
}> {
  override get message(): string {
    return `${this.path}: ${this.reason}`;
  }
}

/** Training stopped on request (Ctrl-C or `stopAfter`) after writing a checkpoint. */
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
  readonly evaluation?: EvaluationResult;
  /** The final evaluation of a panoptic run. */
  readonly panoptic?: PanopticEvaluation;
  readonly report?: string;
}

/** `eval step 175 (val, 101 images): mIoU 32.39 aAcc 85.10 mAcc 40.02 mAP 100.00`, all in percent. */
export const evalLine = (step: number, split: string, r: EvaluationResult): string => {
  const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(2) : "nan");
  const s = r.segmentation;
  return `eval step ${step} (${split}, ${r.images} images): mIoU ${pct(s.mIoU)} aAcc ${pct(s.aAcc)} mAcc ${
    pct(s.mAcc)
  } mAP ${r.mAP === null ? "n/a" : r.mAP.toFixed(2)}`;
};

/**
 * What best.safetensors is judged by: mIoU (percent) on one named image set. A best recorded on another
 * set is not comparable, so the checkpoint store lets the new set take over.
 */
export const bestMetric = (split: string, r: EvaluationResult) => ({
  metric: `mIoU (${split}, ${r.images} images)`,
  value: 100 * r.segmentation.mIoU,
});

const scalar = (v: number) => value("float32", Float32Array.of(v), []);

/** Checks that the dataset's class table fits the model. */
export const checkClasses = (
  e: { readonly model: { readonly classes: number; readonly ignoreIndex: number } },
  classes: ClassTable,
  source: string,
) =>
  Effect.gen(function* () {
    if (classes.names.length !== e.model.classes) {
      return yield* new ExperimentDataMismatch({
        path: "model.classes",
        reason: `${e.model.classes}, but the dataset (${source}) has ${classes.names.length} classes`,
      });
    }
    if (classes.ignoreIndex !== e.model.ignoreIndex) {
      return yield* new ExperimentDataMismatch({
        path: "model.ignoreIndex",
        reason:
          `${e.model.ignoreIndex}, but the dataset (${source}) marks ignored pixels with ${classes.ignoreIndex}`,
      });
    }
  });

/** LarvSeg's losses need image-level labels from the data (e.g. of classes whose masks are hidden). */
export const checkImageLabels = (e: ExperimentFor<"semantic"> | ExperimentFor<"panoptic">) =>
  e.model._tag === "Segmenter" && usesImageLabels(e.model) && e.data.dataset.imageLabels === undefined
    ? Effect.fail(
      new ExperimentDataMismatch({
        path: "data.dataset.imageLabels",
        reason: `model.${
          e.model.imageLevelLoss ? "imageLevelLoss" : "attentiveClassifier"
        } trains on image-level labels; set it to "image" or "crop" (with the novel classes in "hidden")`,
      }),
    )
    : Effect.void;

/**
 * LarvSeg's per-image feeds: the multi-hot image-level labels as float32 and the per-image flag that
 * the pixel labels are valid (1 for every image of a pixel-labelled dataset, 0 for the images a mixed
 * batch takes from an image-level source).
 */
export const imageLabelFeeds = (batch: Batch, classes: number): Record<string, Value> => {
  if (!batch.imageLabels) throw new Error("internal: a LarvSeg batch without image-level labels");
  return {
    [IMAGE_LABELS]: value("float32", Float32Array.from(batch.imageLabels), [batch.batchSize, classes]),
    [PIXEL_LABELLED]: value(
      "float32",
      batch.pixelLabelled
        ? Float32Array.from(batch.pixelLabelled)
        : new Float32Array(batch.batchSize).fill(1),
      [batch.batchSize],
    ),
  };
};

/** The position of the batch after `p` in an epoch of `n` samples in batches of `b` (dropLast). */
export const nextPosition = (p: Position, n: number, b: number): Position =>
  p.index + 2 * b > Math.floor(n / b) * b
    ? { epoch: p.epoch + 1, index: 0 }
    : { epoch: p.epoch, index: p.index + b };

/** The experiment with the folder's run extended to `steps` in total (`--extend-steps`). */
const extendedExperiment = <
  E extends Experiment | ExperimentFor<"semantic"> | ExperimentFor<"panoptic">,
>(
  dir: string,
  e: E,
  steps: number,
) =>
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

export const train = (experiment: Experiment, options: TrainOptions = {}) =>
  Effect.scoped(Effect.gen(function* () {
    // Semantic and panoptic models train here; a panoptic plan has a cost graph and a matching stage.
    const given = experiment.model._tag === "PanopticSegmenter"
      ? yield* requireTask(experiment, "panoptic", "train")
      : yield* requireTask(experiment, "semantic", "train");
    const isPanoptic = given.model._tag === "PanopticSegmenter";
    const provider = options.provider ?? "cpu";
    // The folder of the experiment as given; an extension keeps the folder and changes the step count.
    const dir = runDirFor(experiment, options.out);
    const extend = options.extendSteps !== undefined;
    const e = extend ? yield* extendedExperiment(dir, given, options.extendSteps!) : given;
    const resume = (options.resume ?? false) || extend;
    const t = e.train;
    const dataset = yield* openDataset(e.data.dataset, e.data.dataset.trainSplit);
    yield* checkClasses(e, dataset.classes, dataset.name);
    yield* checkImageLabels(e);
    // A mixed batch's position is its pixel-labelled part's; the image-level source is read (and every
    // bad tag reported) before the slow compilation.
    const imageLevel = e.data.imageLevel;
    if (imageLevel) yield* openImageLevel(imageLevel, e.model.classes);
    const pixelBatch = imageLevel ? imageLevelShare(t.batchSize, imageLevel.ratio).pixel : t.batchSize;
    // One train at a time per folder, held until this scope closes (success, failure, interruption).
    const lock = yield* acquireRunLock(dir);
    // Checked before the (slow) compilation, written only after the sessions have opened: a run that
    // cannot start (an unavailable provider) leaves no folder behind.
    yield* checkRunFolder(dir, e, { resume, extend });
    const print = options.print ?? ((line: string) => console.error(line));
    const log = (line: string) => appendLines(dir, LOG, [`${new Date().toISOString()} ${line}`]);
    const say = (line: string) => Effect.andThen(log(line), Effect.sync(() => print(line)));
    if (lock.recovered) yield* say(lock.recovered);

    const [height, width] = e.data.train.cropSize;
    const shapes = { batch: t.batchSize, height, width, trainSize: [height, width] as const };
    const ranker = yield* loadRanker(e);
    const { graph: g, stages } = trainingStages(e.model, shapes, optimizerConfig(t), ranker);
    const p = plan(e.name, g, stages);
    const ex = yield* execute(p, { seed: t.seed, provider, threads: options.threads });
    // Read before anything is written, so that a weights file that does not fit leaves no run folder.
    const pretrained = yield* pretrainedValues(e.model, g);
    yield* prepareRunFolder(dir, e, { resume, extend, provider, threads: options.threads });
    // The independent scheme's ranker enters as frozen state, read from its own run.
    for (const [name, v] of ranker?.state ?? []) {
      if (!g.lookup(name)) {
        return yield* new ExperimentDataMismatch({
          path: ranker!.checkpoint,
          reason: `"${name}" has no place in the graph`,
        });
      }
      // A declared variable the scores do not need (e.g. ξ's class embeddings) is not part of the plan.
      if (ex.state.has(name)) ex.state.set(name, v);
    }
    const noiseFeeds = p.feeds.filter((f) => f.name.startsWith(NOISE));
    const lossNames = [
      ...new Set([
        ...LOSS_NAMES,
        panoptic.PQ_CLASS_LOSS,
        panoptic.PQ_DICE_LOSS,
        panoptic.MASK_ID_LOSS,
        panoptic.SEMANTIC_LOSS,
      ]),
    ].filter((n) => g.outputs.has(n));
    const larvSeg = p.feeds.some((f) => f.name === IMAGE_LABELS);
    // Ground-truth masks dropped because an image had more than N (counted since this process started).
    let truncation: TruncationTotals = NO_TRUNCATION;
    const maxMasks = e.model._tag === "PanopticSegmenter" ? panoptic.maxMasks(e.model) : 0;

    // Wall-clock seconds of training so far, carried across resumptions (not part of the exact results).
    let elapsedBefore = 0;
    const processStart = performance.now();
    const interval: { losses: Record<string, number>; images: number; started: number } = {
      losses: {},
      images: 0,
      started: performance.now(),
    };
    let progress: Progress = { update: () => {}, done: () => {} };
    // Resume: parameters, optimizer moments and the loader position from the newest checkpoint.
    let step = 0;
    let position: Position = { epoch: 0, index: 0 };
    const ckptDir = join(dir, CHECKPOINTS);
    if (resume) {
      // Repairs what a killed run left (temp files, a corrupt newest checkpoint, a torn or too long
      // metrics.jsonl), saying each, then restores the newest usable checkpoint (none: step 0).
      const resumed = yield* resumeRun(dir, ex.state);
      for (const line of resumed.said) yield* say(line);
      step = resumed.step;
      if (resumed.loop) {
        position = resumed.loop.position;
        interval.losses = { ...resumed.loop.interval.losses };
        interval.images = resumed.loop.interval.images;
        elapsedBefore = resumed.loop.elapsedSeconds;
      }
      yield* log(`resumed from ${resumed.checkpoint ?? "the start (no checkpoint yet)"} at step ${step}`);
      print(`resuming ${dir} from step ${step}${extend ? ` to ${t.steps} steps` : ""}`);
    }
    // A fresh run starts its backbone from the pretrained file; a resumed one has it in its checkpoint.
    if (step === 0) {
      for (const [name, v] of pretrained) ex.state.set(name, value("float32", v.data, v.shape));
      if (pretrained.size > 0) {
        yield* log(`initialized ${pretrained.size} parameters from the pretrained backbone`);
      }
    }

    const checkpoint = (best?: { metric: string; value: number }) =>
      Effect.gen(function* () {
        const loop: LoopState = {
          position,
          interval: { losses: interval.losses, images: interval.images },
          elapsedSeconds: elapsedBefore + (performance.now() - processStart) / 1000,
        };
        // On webgpu the state lives on the device: a checkpoint is one of the few reasons to read it back.
        // A state that went NaN / ±Infinity is refused here, so the last checkpoint stays a usable one.
        const saved = yield* saveCheckpoint(ckptDir, step, {
          tensors: yield* checkpointTensors(yield* ex.hostState(), step),
          metadata: { [LOOP_STATE_KEY]: JSON.stringify(loop), "train.seed": JSON.stringify(t.seed) },
        }, { keepLast: t.keepCheckpoints, best });
        for (const m of saved.movedAside) yield* say(movedAsideLine(m));
        yield* log(`checkpoint ${saved.file}`);
        return saved.file;
      });

    // Every evaluation of the run sees the same images, so "best" and the final table are comparable.
    const split = e.data.dataset.testSplit;
    const novel = yield* novelMask(dataset.classes.names, e.eval.novel, dataset.name);
    const validatePanoptic = () =>
      Effect.gen(function* () {
        const r = yield* evaluatePanoptic(e as ExperimentFor<"panoptic">, ex.state, dataset.classes, {
          provider,
          threads: options.threads,
          workers: options.workers,
          limit: options.evalLimit,
        });
        const pct = (x: number) => toPercent(x);
        yield* appendLines(dir, METRICS, [JSON.stringify({
          kind: "eval",
          step,
          split,
          images: r.images,
          units: "percent",
          PQ: pct(r.pq.all.pq),
          SQ: pct(r.pq.all.sq),
          RQ: pct(r.pq.all.rq),
          PQ_th: pct(r.pq.things.pq),
          PQ_st: pct(r.pq.stuff.pq),
          mIoU: pct(r.segmentation.mIoU),
        })]);
        const line = panopticEvalLine(step, split, r);
        yield* log(line);
        progress.done();
        print(line);
        return r;
      });
    const panopticBest = (r: PanopticEvaluation) => ({
      metric: `PQ (${split}, ${r.images} images)`,
      value: 100 * r.pq.all.pq,
    });
    const logTruncation = () => isPanoptic ? log(truncationReport(truncation, maxMasks)) : Effect.void;

    const validate = (final: boolean) =>
      Effect.gen(function* () {
        const result = yield* evaluate(e, ex.state, dataset.classes, {
          ranker,
          mode: e.eval.mode,
          crop: e.eval.crop,
          stride: e.eval.stride,
          provider,
          threads: options.threads,
          workers: options.workers,
          limit: options.evalLimit,
          examples: final ? e.eval.examples : 0,
          examplesDir: join(dir, EXAMPLES),
        });
        const s = result.segmentation;
        const mAP = result.mAP;
        yield* appendLines(dir, METRICS, [JSON.stringify({
          kind: "eval",
          step,
          split,
          images: result.images,
          units: "percent",
          mIoU: toPercent(s.mIoU),
          aAcc: toPercent(s.aAcc),
          mAcc: toPercent(s.mAcc),
          ...(mAP === null ? {} : { mAP }),
          ...(novel === undefined ? {} : (() => {
            const bn = baseNovelMIoU(s.iou, novel);
            return { mIoUBase: toPercent(bn.base), mIoUNovel: toPercent(bn.novel) };
          })()),
        })]);
        const line = evalLine(step, split, result);
        yield* log(line);
        progress.done();
        print(line);
        return result;
      });

    // Ctrl-C: finish the current step, write a checkpoint, stop.
    let stopRequested = false;
    const onSignal = () => (stopRequested = true);
    yield* Effect.acquireRelease(
      Effect.sync(() => Deno.addSignalListener("SIGINT", onSignal)),
      () => Effect.sync(() => Deno.removeSignalListener("SIGINT", onSignal)),
    );

    progress = progressReporter(t.steps, step, print);
    const n = dataset.samples.length;
    const runStep = (batch: Batch) =>
      Effect.gen(function* () {
        step++;
        const lr = learningRate(t.schedule, t.optimizer.lr, step, t.steps);
        const dims = [batch.batchSize, batch.height, batch.width];
        const feeds: Record<string, Value> = {
          images: value("float32", batch.images, [batch.batchSize, 3, batch.height, batch.width]),
          labels: value("int32", batch.labels, dims),
          lr: scalar(lr),
          step: scalar(step),
          ...(larvSeg ? imageLabelFeeds(batch, e.model.classes) : {}),
        };
        if (isPanoptic) {
          // Targets from the segment ids that went through the batch's crop and flip; their semantic
          // labels (crowd and void ignored) replace the semantic PNG's.
          const targets = batch.panoptic!.map((s, i) =>
            panopticTargets(s.segmentIds, s.segments, {
              maxMasks,
              ignoreIndex: e.model.ignoreIndex,
              source: batch.ids[i],
            })
          );
          for (const target of targets) truncation = countTruncation(truncation, target);
          const stacked = stackTargets(targets, e.model.classes);
          feeds.labels = value("int32", Int32Array.from(stacked.semantic, Number), dims);
          feeds[panoptic.MASK_IDS] = value("int64", stacked.maskIds, dims);
          feeds[panoptic.MASK_CLASSES] = value("int64", stacked.classes, [batch.batchSize, maxMasks]);
          feeds[panoptic.MASK_COUNTS] = value("int64", stacked.counts, [batch.batchSize]);
        }
        for (const f of noiseFeeds) feeds[f.name] = noiseFeed(t.seed, step, f);
        const out = yield* ex.run(feeds);
        for (const name of lossNames) {
          const v = out.get(name)!.data[0] as number;
          if (!Number.isFinite(v)) return yield* new NonFiniteLoss({ step, term: name, value: v });
          interval.losses[name] = (interval.losses[name] ?? 0) + v;
        }
        interval.images += batch.batchSize;
        position = nextPosition(batch.position, n, pixelBatch);
        if (step % t.logEvery === 0 || step === t.steps) {
          const steps = step % t.logEvery === 0 ? t.logEvery : step % t.logEvery;
          const mean = (name: string) => interval.losses[name] / steps;
          const seconds = (performance.now() - interval.started) / 1000;
          const line = {
            kind: "train",
            step,
            epoch: batch.position.epoch,
            lr,
            loss: mean(LOSS),
            terms: Object.fromEntries(
              lossNames.filter((l) => l !== LOSS).map((l) => [l.replace("loss.", ""), mean(l)]),
            ),
            imagesPerSecond: interval.images / seconds,
            elapsedSeconds: elapsedBefore + (performance.now() - processStart) / 1000,
          };
          yield* appendLines(dir, METRICS, [JSON.stringify(line)]);
          progress.update(step, line.loss, line.imagesPerSecond);
          interval.losses = {};
          interval.images = 0;
          interval.started = performance.now();
        }
        if (step % t.checkpointEvery === 0 && step < t.steps) {
          yield* logTruncation();
          yield* checkpoint();
        }
        if (t.evalEvery > 0 && step % t.evalEvery === 0 && step < t.steps) {
          if (isPanoptic) yield* checkpoint(panopticBest(yield* validatePanoptic()));
          else yield* checkpoint(bestMetric(split, yield* validate(false)));
        }
        if (stopRequested || step === options.stopAfter) {
          const file = yield* checkpoint();
          progress.done();
          return yield* new Stopped({ step, checkpoint: file });
        }
      });

    if (step < t.steps) {
      yield* log(`training ${e.name} for ${t.steps - step} steps from step ${step}`);
      const loaderOptions = {
        batchSize: t.batchSize,
        seed: t.seed,
        start: position,
        workers: options.workers,
        panoptic: isPanoptic,
      };
      const batches = (imageLevel
        ? mixedTrainLoader(e.data.dataset, e.data.train, imageLevel, loaderOptions)
        : trainLoader(e.data.dataset, e.data.train, loaderOptions)).pipe(Stream.take(t.steps - step));
      yield* Stream.runForEach(batches, runStep);
      progress.done();
    }
    yield* logTruncation();
    const last = yield* checkpoint();
    if (options.skipFinalEval) return { runDir: dir, step } satisfies TrainResult;
    if (isPanoptic) {
      const r = yield* validatePanoptic();
      yield* checkpoint(panopticBest(r));
      yield* writePanopticRecord(dir, { split, step, checkpoint: last, evaluation: r });
      print(formatPanopticTable(r));
      return { runDir: dir, step, panoptic: r } satisfies TrainResult;
    }
    const evaluation = yield* validate(true);
    yield* checkpoint(bestMetric(split, evaluation));
    // The final table is the last checkpoint's, on the run's evaluation image set.
    const record = makeEvalRecord({
      split,
      images: evaluation.images,
      step,
      checkpoint: last,
      mode: e.eval.mode,
      classNames: dataset.classes.names,
      segmentation: evaluation.segmentation,
      mAP: evaluation.mAP,
      ...(novel ? { novel } : {}),
    });
    yield* writeEvalRecord(dir, record);
    print(
      formatMetricsTable({
        classNames: dataset.classes.names,
        segmentation: evaluation.segmentation,
        mAP: evaluation.mAP ?? undefined,
        ...(novel ? { novel } : {}),
      }),
    );
    const report = yield* writeReport(dir, { title: e.name });
    return { runDir: dir, step, evaluation, report } satisfies TrainResult;
  }));
