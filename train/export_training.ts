/**
 * The training export: what a browser tab needs to fine-tune a model with onnxruntime-web, as a handful
 * of files (`deno task export <run> <folder> --training`, and what `deno task web` serves):
 *
 * - `train-step.onnx`: the training plan's one graph (forward, losses, backward, optimizer update), in
 *   the CPU lowering (plain ONNX), with the state as inputs and its update as `next:<name>` outputs — the
 *   graph `deno task train` runs, fed the same way;
 * - `state.safetensors`: the initial state under kappa's names (parameters, optimizer moments, frozen
 *   ranker parameters): a run's checkpoint, or the experiment's initialization with its pretrained
 *   backbone;
 * - `shard.safetensors`: the first batches the experiment's own training loader yields from the start
 *   position (augmented, normalized: `images` [n, 3, H, W], `labels` [n, H, W], ...): the page cycles
 *   through them;
 * - `training.json`: the feeds, the learning rate of every step of the budget (the experiment's schedule
 *   over start + steps, as `--extend-steps` recomputes it), the dropout noise sites and how kappa draws
 *   their noise, the loss outputs and what a checkpoint written by the page must carry;
 * - `model.onnx` (the inference export of the initial state) and `infer.onnx` (the same graph with the
 *   parameters as inputs, so the page can segment with the state it trained).
 *
 * Only plans of one graph stage are exported: a plan with host stages (LarvSeg's memory bank, the
 * panoptic matching) and mixed image-level batches are refused with the field at fault.
 */
import { Data, Effect, Stream } from "effect";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { AnyExperiment } from "../dsl/experiment.ts";
import { learningRate } from "../dsl/training.ts";
import { inferenceShapes, trainShapes, trainSize } from "../interpret/shapes.ts";
import { optimizerConfig } from "../interpret/optimizer.ts";
import { pretrainedValues } from "../interpret/pretrained.ts";
import { NEXT, plan } from "../ir/plan.ts";
import { initialize, nameKey } from "../ir/init.ts";
import type { HostArray } from "../ir/dtype.ts";
import { type Value, value } from "../ir/value.ts";
import { toOnnx } from "../onnx/lower.ts";
import { NOISE } from "../layers/dropout.ts";
import { trainLoader } from "../data/loader.ts";
import type { Position } from "../data/batch.ts";
import { openDataset } from "../data/open.ts";
import { encodeSafetensors, type Tensor } from "../io/safetensors.ts";
import { exportModel } from "../eval/export_model.ts";
import { bindKind, kindPart } from "../kinds/registry.ts";
import { exportedModel } from "../kinds/export.ts";
import { type LoadedRun, loadRun } from "./load_run.ts";
import { decodeMetadataJson, loadCheckpoint, type LoadedCheckpoint } from "./checkpoint.ts";
import { checkpointValues, LOOP_STATE_KEY, LoopState, NOISE_KEY } from "./run_state.ts";
import { nextPosition } from "./train.ts";

/** The file names of a training export, in its folder and under `/files/` of the page's server. */
export const TRAINING_FILES = {
  step: "train-step.onnx",
  state: "state.safetensors",
  shard: "shard.safetensors",
  settings: "training.json",
  model: "model.onnx",
  infer: "infer.onnx",
} as const;

/** The version of `training.json`'s layout, checked by the page. */
export const TRAINING_FORMAT = "kappa-web-training/1";

/** An experiment or run the page cannot train: `path` names the field (or file) at fault. */
export class TrainingExportError
  extends Data.TaggedError("TrainingExportError")<{ readonly path: string; readonly reason: string }> {
  override get message(): string {
    return `${this.path}: ${this.reason}`;
  }
}

/** A named tensor the step graph reads or returns. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
}

/** `training.json`: everything the page needs besides the tensors. */
export interface TrainingSettings {
  readonly format: typeof TRAINING_FORMAT;
  readonly experiment: string;
  /** Where the initial state came from, in words (a run's checkpoint, or the initialization). */
  readonly source: string;
  readonly checkpoint: string | null;
  readonly seed: number;
  readonly batchSize: number;
  readonly cropSize: readonly [number, number];
  readonly classes: number;
  readonly ignoreIndex: number;
  readonly classNames: readonly string[];
  /** The dataset's class colours (RGB), as predict draws them. */
  readonly classColors: readonly (readonly [number, number, number])[];
  readonly mean: readonly number[];
  readonly std: readonly number[];
  /** The step the state is at; the page's first step is startStep + 1. */
  readonly startStep: number;
  /** lr[i] is the learning rate of step startStep + 1 + i; its length is the page's step budget. */
  readonly lr: readonly number[];
  readonly schedule: string;
  /** The step graph's inputs besides the state, and which of them come from the shard per sample. */
  readonly feeds: readonly TensorSpec[];
  readonly batchFeeds: readonly string[];
  /** The state in the step graph's input order; `updated`: those with a `next:` output. */
  readonly state: readonly TensorSpec[];
  readonly updated: readonly string[];
  /** The loss outputs, the total first. */
  readonly losses: readonly string[];
  /**
   * Dropout noise: site s at step t is uniform [0, 1) from core/random.ts's
   * `random(seed, key, t, site.key)`, one `uniform()` per element in row-major order.
   */
  readonly noise: {
    readonly key: number;
    readonly sites: readonly (TensorSpec & { readonly key: number })[];
  };
  /** The shard: `batches` batches of `batchSize` samples, the loader's positions, and the position after. */
  readonly shard: {
    readonly samples: number;
    readonly batches: number;
    readonly positions: readonly Position[];
    readonly next: Position;
    readonly ids: readonly string[];
  };
  /** What a checkpoint written by the page carries in its metadata (train/run_state.ts's loop state). */
  readonly loop: LoopState;
  /** `infer.onnx`'s parameter inputs (a subset of the state). */
  readonly inferParameters: readonly string[];
}

export interface TrainingExport {
  readonly files: Readonly<Record<string, Uint8Array>>;
  readonly settings: TrainingSettings;
}

export interface TrainingExportOptions {
  /** Batches in the shard (default 4). */
  readonly shardBatches?: number;
  /** The page's step budget: how many learning rates training.json lists (default 100). */
  readonly steps?: number;
  /** Loader workers for the shard (default: the loader's). */
  readonly workers?: number;
}

/** Where training starts: a checkpoint (or none: the experiment's initialization) at a step and position. */
export interface TrainingStart {
  readonly checkpoint?: LoadedCheckpoint;
  readonly step: number;
  readonly loop: LoopState;
  /** In words, for the page and training.json. */
  readonly source: string;
}

const FRESH_LOOP: LoopState = {
  position: { epoch: 0, index: 0 },
  interval: { losses: {}, images: 0 },
  elapsedSeconds: 0,
};

/** The feeds the page makes itself each step (besides dropout noise): the learning rate and the step. */
const SCALAR_FEEDS = new Set(["lr", "step"]);

/** How the shard stores a per-sample feed; the page feeds float32 and int32 tensors. */
const STORED: Record<string, Tensor["dtype"] | undefined> = { float32: "F32", int32: "I32" };

/** Values of one feed from successive batches, stacked along the batch dimension. */
const stack = (parts: readonly Value[]): Tensor => {
  const total = parts.reduce((n, p) => n + (p.data as Float32Array).length, 0);
  const data = new (parts[0].data.constructor as new (n: number) => Float32Array | Int32Array)(total);
  let at = 0;
  for (const p of parts) {
    data.set(p.data as Float32Array & Int32Array, at);
    at += (p.data as Float32Array).length;
  }
  return {
    dtype: STORED[parts[0].type]!,
    shape: [parts.reduce((n, p) => n + p.dims[0], 0), ...parts[0].dims.slice(1)],
    data,
  };
};

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 1) + "\n");

/** The training export of `e` from `start` (see the module comment). */
export const exportTraining = (
  e: AnyExperiment,
  start: TrainingStart,
  options: TrainingExportOptions = {},
) =>
  Effect.gen(function* () {
    if (e.data.imageLevel) {
      return yield* new TrainingExportError({
        path: "data.imageLevel",
        reason: "the page trains on one loader's batches; mixed image-level batches are not exported",
      });
    }
    const shardBatches = options.shardBatches ?? 4;
    const budget = options.steps ?? 100;
    const t = e.train;
    // The kind's training, as train/train.ts binds it: checks, stages, frozen state, losses, feeds.
    const bound = yield* bindKind(e, loadRun);
    const training = yield* kindPart(bound, "training", "the page's training");
    const dataset = yield* openDataset(e.data.dataset, e.data.dataset.trainSplit);
    yield* training.checkData(dataset);
    const { graph: g, stages } = training.stages(trainShapes(e), optimizerConfig(t));
    const hostStages = stages.filter((s) => s._tag === "HostStage").map((s) => s.name);
    if (hostStages.length > 0) {
      const attentive = (e.model as { attentiveClassifier?: unknown }).attentiveClassifier;
      return yield* new TrainingExportError({
        path: attentive ? "model.attentiveClassifier" : "model",
        reason:
          `its training plan has host stages (${hostStages.join(", ")}) between graphs; the page runs ` +
          "plans of one graph (a plain segmenter, or LarvSeg without the attentive classifier)",
      });
    }
    const stage = stages[0];
    if (stage._tag !== "GraphStage") throw new Error("internal: a one-stage plan that is not a graph");
    const p = plan(e.name, g, stages);

    // The shard: the loader's first batches from the start position, fed as training feeds them.
    const batches = yield* Stream.runCollect(
      trainLoader(e.data.dataset, e.data.train, {
        batchSize: t.batchSize,
        seed: t.seed,
        start: start.loop.position,
        workers: options.workers,
        panoptic: training.loader.panoptic,
      }).pipe(Stream.take(shardBatches)),
    );
    let tally = training.tally;
    const perBatch = batches.map((b) => {
      const kind = training.feeds(b, tally);
      tally = kind.tally;
      return {
        images: value("float32", b.images, [b.batchSize, 3, b.height, b.width]),
        ...kind.feeds,
      } as Record<string, Value>;
    });
    const batchFeeds = p.feeds.filter((f) => f.name in perBatch[0]).map((f) => f.name);
    const unfed = p.feeds.filter((f) =>
      !batchFeeds.includes(f.name) && !SCALAR_FEEDS.has(f.name) && !f.name.startsWith(NOISE)
    );
    const unstored = batchFeeds.filter((n) => !STORED[perBatch[0][n].type]);
    if (unfed.length > 0 || unstored.length > 0) {
      return yield* new TrainingExportError({
        path: "model",
        reason: `its step graph reads ${
          [...unfed.map((f) => f.name), ...unstored].map((n) => `"${n}"`).join(", ")
        }, which the page cannot feed (it feeds float32 and int32 batches, lr, step and dropout noise)`,
      });
    }
    const shard = Object.fromEntries(batchFeeds.map((n) => [n, stack(perBatch.map((b) => b[n]))]));
    const positions = batches.map((b) => b.position);
    const next = nextPosition(positions.at(-1)!, dataset.samples.length, t.batchSize);

    // The initial state, as train.ts makes it: every entry initialized from the seed, the frozen state
    // from another run, then the pretrained backbone (a fresh start) or the checkpoint's tensors.
    const state = new Map<string, HostArray>(
      p.state.map((s) => [s.name, initialize(s.init, s.name, s.dtype, s.shape, t.seed)]),
    );
    for (const [name, v] of training.frozen?.state ?? []) {
      if (state.has(name)) state.set(name, v.data as HostArray);
    }
    if (start.checkpoint) {
      // Every state entry from the checkpoint, checked as a resumed run checks it (all problems at once).
      const saved = yield* checkpointValues(start.checkpoint, p.state, "state tensors");
      for (const [name, v] of saved) state.set(name, v.data as HostArray);
    } else {
      for (const [name, v] of yield* pretrainedValues(e.model, g)) state.set(name, v.data);
    }

    const lowered = toOnnx(g, {
      name: "train-step",
      target: "cpu",
      ...(stage.outputs ? { outputs: stage.outputs } : {}),
    });
    const stateNames = new Set(p.state.map((s) => s.name));
    const outputNames = new Set(lowered.outputs.map((o) => o.name));
    const classNames = dataset.classes.names;
    const stateValues = new Map<string, Value>(
      p.state.map((s) => [s.name, value(s.dtype, state.get(s.name)!, s.shape)]),
    );
    const exported = yield* exportedModel(e, stateValues, {
      checkpoint: start.checkpoint?.file ?? "",
      step: start.step,
      runs: loadRun,
    });
    const model = exportModel(e, stateValues, exported, { classNames }).bytes;
    const inferGraph = bound.inferenceGraph(inferenceShapes(e, 1));
    const infer = toOnnx(inferGraph, {
      name: "infer",
      outputs: exported.outputs.filter((o) => inferGraph.outputs.has(o)),
    });

    const spec = (v: { name: string; dtype: string; shape: readonly number[] }): TensorSpec => ({
      name: v.name,
      dtype: v.dtype,
      shape: [...v.shape],
    });
    const settings: TrainingSettings = {
      format: TRAINING_FORMAT,
      experiment: e.name,
      source: start.source,
      checkpoint: start.checkpoint?.file ?? null,
      seed: t.seed,
      batchSize: t.batchSize,
      cropSize: trainSize(e),
      classes: classNames.length,
      ignoreIndex: dataset.classes.ignoreIndex,
      classNames,
      classColors: dataset.classes.colors.map((c) => [c[0], c[1], c[2]] as const),
      mean: e.data.train.mean,
      std: e.data.train.std,
      startStep: start.step,
      lr: Array.from(
        { length: budget },
        (_, i) => learningRate(t.schedule, t.optimizer.lr, start.step + 1 + i, start.step + budget),
      ),
      schedule: `${t.schedule._tag} over steps ${start.step + 1}..${
        start.step + budget
      } (base lr ${t.optimizer.lr})`,
      feeds: p.feeds.map(spec),
      batchFeeds,
      state: lowered.inputs.filter((i) => stateNames.has(i.name)).map(spec),
      updated: p.state.filter((s) => outputNames.has(NEXT + s.name)).map((s) => s.name),
      losses: training.lossNames(g).filter((l) => outputNames.has(l)),
      noise: {
        key: NOISE_KEY,
        sites: p.feeds.filter((f) => f.name.startsWith(NOISE)).map((f) => ({
          ...spec(f),
          key: nameKey(f.name),
        })),
      },
      shard: {
        samples: batches.length * t.batchSize,
        batches: batches.length,
        positions,
        next,
        ids: batches.flatMap((b) => b.ids),
      },
      loop: start.loop,
      inferParameters: infer.variables,
    };
    const stateTensors: Record<string, Tensor> = Object.fromEntries(
      p.state.map((
        s,
      ) => [s.name, { dtype: "F32", shape: [...s.shape], data: state.get(s.name) as Float32Array }]),
    );
    return {
      settings,
      files: {
        [TRAINING_FILES.step]: lowered.bytes,
        [TRAINING_FILES.state]: encodeSafetensors(stateTensors, {
          "checkpoint.step": JSON.stringify(start.step),
          [LOOP_STATE_KEY]: JSON.stringify(start.loop),
          "train.seed": JSON.stringify(t.seed),
        }),
        [TRAINING_FILES.shard]: encodeSafetensors(shard),
        [TRAINING_FILES.settings]: json(settings),
        [TRAINING_FILES.model]: model,
        [TRAINING_FILES.infer]: infer.bytes,
      },
    } satisfies TrainingExport;
  });

/** The training export of a run folder from one of its checkpoints (`loadRun`'s choice by default). */
export const exportRunTraining = (dir: string, checkpoint?: string, options: TrainingExportOptions = {}) =>
  Effect.gen(function* () {
    const run: LoadedRun = yield* loadRun(dir, checkpoint);
    const ckpt = yield* loadCheckpoint(run.checkpoint);
    // A checkpoint without a loop state (not written by train or the page) starts the loader at 0.
    const loop = Object.hasOwn(ckpt.metadata, LOOP_STATE_KEY)
      ? yield* decodeMetadataJson(ckpt.metadata, LOOP_STATE_KEY, LoopState, run.checkpoint)
      : FRESH_LOOP;
    return yield* exportTraining(run.experiment, {
      checkpoint: ckpt,
      step: run.step,
      loop,
      source: `${run.checkpoint} (step ${run.step}; ${run.why})`,
    }, options);
  });

/** The training export of an experiment from its initialization (pretrained backbone, if any), at step 0. */
export const exportExperimentTraining = (e: AnyExperiment, options: TrainingExportOptions = {}) =>
  exportTraining(e, {
    step: 0,
    loop: FRESH_LOOP,
    source: "the experiment's initialization" +
      (e.model.backbone._tag === "MobileNetV2" && e.model.backbone.pretrained
        ? ` with the pretrained backbone ${e.model.backbone.pretrained}`
        : ""),
  }, options);

/** Writes a training export's files into `folder` (created if needed); returns the paths written. */
export const writeTrainingExport = (folder: string, x: TrainingExport) =>
  Effect.gen(function* () {
    yield* Effect.tryPromise({
      try: () => mkdir(folder, { recursive: true }),
      catch: (e) =>
        new TrainingExportError({ path: folder, reason: `cannot create: ${(e as Error).message}` }),
    });
    const written: string[] = [];
    for (const [name, bytes] of Object.entries(x.files)) {
      const file = join(folder, name);
      yield* Effect.tryPromise({
        try: () => writeFile(file, bytes),
        catch: (e) =>
          new TrainingExportError({ path: file, reason: `cannot write: ${(e as Error).message}` }),
      });
      written.push(file);
    }
    return written;
  });
