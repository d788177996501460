/**
 * A model kind as one record: everything the generic programs (train/, the CLI's eval, predict and
 * export) need to know of a kind, so that they never ask which kind they run.
 *
 * A record is bound to one experiment (`bind`), which reads what the kind needs from elsewhere (the
 * independent scheme's ranker, from its run folder) once; the bound kind then gives
 *
 * - `inferenceGraph`: the graph at given shapes;
 * - `training`: data checks before compilation, what the loader must carry, the training plan's stages,
 *   frozen state from elsewhere, the loss outputs (total first) and each batch's feeds;
 * - `evaluation` (`eval/evaluation.ts`): the evaluation, its headline metric and direction, its
 *   metrics.jsonl fields, lines, table and record;
 * - `prediction` (`eval/prediction.ts`): what `predict` writes for an image;
 * - `export` (`eval/export_model.ts`): the exported outputs and metadata.
 *
 * A part a kind does not have is absent, and the program that needs it says so in one line.
 */
import { Data, type Effect } from "effect";
import type { AnyExperiment, ExperimentOf } from "../dsl/experiment.ts";
import type { ModelSpec } from "../dsl/model.ts";
import type { Graph } from "../ir/graph.ts";
import type { Stage } from "../ir/plan.ts";
import type { OptimizerConfig } from "../ir/optim.ts";
import type { Value } from "../ir/value.ts";
import type { Shapes } from "../interpret/shapes.ts";
import type { DataParallelOptions } from "../interpret/data_parallel.ts";
import type { BackboneMode } from "../interpret/frozen_backbone.ts";
import type { BatchLabels } from "../data/batch.ts";
import type { Dataset } from "../data/dataset.ts";
import type { Evaluation, Failure } from "../eval/evaluation.ts";
import type { Prediction } from "../eval/prediction.ts";
import type { Exporting } from "../eval/export_model.ts";

export type { Failure } from "../eval/evaluation.ts";

/** A run folder read back: what a kind may need of another run (the independent scheme's ranker). */
export interface ReadRun {
  readonly dir: string;
  readonly experiment: AnyExperiment;
  readonly state: ReadonlyMap<string, Value>;
  readonly checkpoint: string;
}

/** Reads a run folder (train/'s `loadRun`): given to `bind` by the program, which owns run folders. */
export type RunReader = (dir: string) => Effect.Effect<ReadRun, Failure>;

/** One batch's feeds of a kind, and its running tally after the batch. */
export interface BatchFeeds<T> {
  readonly feeds: Record<string, Value>;
  readonly tally: T;
}

/**
 * How a kind trains. `T` is a tally the loop carries from batch to batch for the kind (the panoptic kind's
 * count of truncated ground-truth masks); kinds without one use `undefined`.
 */
export interface Training<T> {
  /** Checks the training data fits the model before anything is compiled (class table, labels). */
  checkData(dataset: Dataset): Effect.Effect<void, Failure>;
  /** What the training batches must carry besides images and labels. */
  readonly loader: { readonly panoptic: boolean };
  /**
   * The training plan's stages; `graph` is the stage that declares the plan's parameters. `backbone`
   * (default "trained") is how the plan treats the backbone under `train.frozenBackbone`
   * (interpret/frozen_backbone.ts); a kind without `features` is only asked for "trained".
   */
  stages(
    shapes: Shapes,
    optimizer: OptimizerConfig,
    backbone?: BackboneMode,
  ): { readonly graph: Graph; readonly stages: Stage[] };
  /**
   * One rank's stages when several processes train the run, each on its shard of every global batch
   * (interpret/data_parallel.ts: counts → all-reduce → gradients → all-reduce → update); `shapes` are the
   * rank's (its share of the batch). Absent: the kind trains in one process only.
   */
  dataParallelStages?(
    shapes: Shapes,
    optimizer: OptimizerConfig,
    options: DataParallelOptions,
  ): { readonly graph: Graph; readonly stages: Stage[] };
  /**
   * The feature graph (`images` → `features.<i>`, the backbone outputs the head reads) at `shapes`: what
   * a frozen backbone's feature cache holds. Absent: the kind cannot train with a frozen backbone.
   */
  features?(shapes: Shapes): Graph;
  /** State that enters the plan from another run, frozen (the ranker's parameters), and where it came from. */
  readonly frozen?: { readonly source: string; readonly state: ReadonlyMap<string, Value> };
  /** The loss outputs of the training graph to log and check, the total first. */
  lossNames(graph: Graph): string[];
  /** The tally before the first batch of this process. */
  readonly tally: T;
  /**
   * A batch's feeds besides `images` (or a frozen backbone's cached `features.<i>`), `lr`, `step` and
   * dropout noise: labels in the kind's form, targets. It reads no images.
   */
  feeds(batch: BatchLabels, tally: T): BatchFeeds<T>;
  /** A line for train.log at each checkpoint about the tally, if the kind keeps one. */
  tallyLine?(tally: T): string;
}

/** A kind bound to one experiment. */
export interface BoundKind {
  readonly kind: ModelKind;
  readonly experiment: AnyExperiment;
  /** The inference graph at `shapes`. */
  inferenceGraph(shapes: Shapes): Graph;
  readonly training?: Training<unknown>;
  readonly evaluation?: Evaluation<unknown>;
  readonly prediction?: Prediction;
  readonly export?: Exporting;
}

/** A model kind's record; `M` is its spec type (registered in dsl/ with `registerModelSchema`). */
export interface ModelKind<M extends ModelSpec = ModelSpec> {
  /** The spec's `_tag`. */
  readonly tag: M["_tag"];
  /** What its runs do, in words ("semantic", "panoptic", "classification", …). */
  readonly task: string;
  /** Binds the kind to an experiment; `runs` reads other run folders it depends on. */
  bind(e: ExperimentOf<M>, runs: RunReader): Effect.Effect<BoundKind, Failure>;
}

/** The program's part of a kind that a kind does not have. */
export type KindPart = "training" | "evaluation" | "prediction" | "export";

const PART_VERB: Record<KindPart, string> = {
  training: "trains",
  evaluation: "evaluates",
  prediction: "predicts",
  export: "exports",
};

/** A program was given a model whose kind does not have the part it needs (or is another kind). */
export class UnsupportedModelKind extends Data.TaggedError("UnsupportedModelKind")<{
  readonly program: string;
  readonly kind: string;
  readonly task: string;
  /** The part the kind lacks, or the kind the program needs. */
  readonly needs: KindPart | { readonly kind: string };
}> {
  override get message(): string {
    return typeof this.needs === "string"
      ? `model: ${this.program} needs a model kind that ${PART_VERB[this.needs]}; a ${this.kind} ` +
        `(${this.task}) has no ${this.needs}`
      : `model: ${this.program} runs ${this.needs.kind} models; this experiment's model is a ${this.kind} ` +
        `(${this.task})`;
  }
}

/** An experiment's model kind has no record (its schema was registered in dsl/, its record was not). */
export class UnknownModelKind extends Data.TaggedError("UnknownModelKind")<{ readonly kind: string }> {
  override get message(): string {
    return `model: no record for the model kind "${this.kind}"; register one with registerKind (kinds/registry.ts)`;
  }
}
