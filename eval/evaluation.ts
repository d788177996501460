/**
 * What the programs (training's validations, `deno task eval`) need of a model kind's evaluation, and
 * the one path that writes its record: every kind evaluates through this contract (`kinds/` holds one
 * per kind), so train/ and the CLI never ask which kind they evaluate.
 *
 * A record's file name says which evaluation it holds (`evalRecordName`), so that a run's own record
 * (its last checkpoint on its evaluation images) is never overwritten by another evaluation.
 */
import { Data, Effect } from "effect";
import { join } from "node:path";
import type { Dataset } from "../data/dataset.ts";
import type { RuntimeOptions } from "../runtime/execute.ts";
import type { Value } from "../ir/value.ts";
import { writeFileAtomic } from "../io/atomic_write.ts";
import { EvalRecordError, evalRecordName, type EvalRecordNaming } from "./eval_record.ts";

/** A typed error of any program part (every `Data.TaggedError` is one). */
export interface Failure {
  readonly _tag: string;
  readonly message: string;
}

/** How to evaluate: which images, how predictions are made, where examples go. */
export interface EvaluationRequest extends RuntimeOptions {
  readonly split: string;
  /** Only the first N images of the split. */
  readonly limit?: number;
  readonly workers?: number;
  /** Whole images or sliding windows (kinds that offer both; see `Evaluation.modes`). */
  readonly mode: "whole" | "slide";
  /** The ground-truth class oracle (kinds that offer one; see `Evaluation.oracle`). */
  readonly oracle: boolean;
  /**
   * The ranker-quality probe's α in [0, 1] (semantic top-κ models; eval/evaluate.ts): select by ξ's scores
   * mixed with the ground truth. Only the ranker-quality grid asks for it; a kind without it ignores it.
   */
  readonly groundTruthWeight?: number;
  /** Write image / label / prediction PNGs of the first N images into `examplesDir`. */
  readonly examples?: number;
  readonly examplesDir?: string;
}

/** The number a run's best checkpoint is chosen by. */
export interface Headline {
  /** Its name, e.g. "mIoU" or "PQ". */
  readonly name: string;
  readonly higherIsBetter: boolean;
}

/** What a record holds besides the kind's numbers. */
export interface RecordMeta {
  readonly split: string;
  readonly step: number;
  readonly checkpoint: string;
  readonly mode: "whole" | "slide";
  readonly oracle: boolean;
  /** `parametersDigest` of the evaluated state: ties the record to the weights it measured. */
  readonly parameters: string;
}

/** A model kind's evaluation; `R` is its result. */
export interface Evaluation<R> {
  /** The prediction modes it offers (`whole` first); another is refused before anything runs. */
  readonly modes: readonly ("whole" | "slide")[];
  /** Whether it offers the ground-truth oracle. */
  readonly oracle: boolean;
  /** Evaluates a trained state on `request.split` of the experiment's dataset (`dataset`, opened). */
  run(
    state: ReadonlyMap<string, Value>,
    dataset: Dataset,
    request: EvaluationRequest,
  ): Effect.Effect<R, Failure>;
  readonly headline: Headline;
  headlineValue(r: R): number;
  /** How many images were evaluated. */
  images(r: R): number;
  /** The fields of its metrics.jsonl line (after kind, step, split, images, units), in percent. */
  metrics(r: R): Record<string, unknown>;
  /** The line after `eval step N (split, n images): `, e.g. `mIoU 32.39 aAcc 85.10 …`. */
  line(r: R): string;
  /** The table printed after an evaluation; its last line is `<name>=<value> …` for scripts to grep. */
  table(r: R, dataset: Dataset): string;
  /** The JSON of its `eval-….json` record. */
  record(r: R, meta: RecordMeta, dataset: Dataset): unknown;
  /** Whether a run folder's report (`report.html`) shows this kind's evaluations. */
  readonly report: boolean;
}

/** An evaluation asked of a kind in a way it does not evaluate (sliding windows, the oracle). */
export class UnsupportedEvaluation extends Data.TaggedError("UnsupportedEvaluation")<{
  readonly flag: string;
  readonly kind: string;
  readonly offers: string;
}> {
  override get message(): string {
    return `eval: ${this.flag}: a ${this.kind} model ${this.offers}`;
  }
}

/** Refuses a request for a mode or the oracle that the kind's evaluation does not offer. */
export const checkRequest = <R>(
  evaluation: Evaluation<R>,
  kind: string,
  request: Pick<EvaluationRequest, "mode" | "oracle">,
): Effect.Effect<void, UnsupportedEvaluation> =>
  !evaluation.modes.includes(request.mode)
    ? Effect.fail(
      new UnsupportedEvaluation({
        flag: `--mode ${request.mode}`,
        kind,
        offers: `evaluates in ${evaluation.modes.join(" or ")} mode only`,
      }),
    )
    : request.oracle && !evaluation.oracle
    ? Effect.fail(new UnsupportedEvaluation({ flag: "--oracle", kind, offers: "has no ground-truth oracle" }))
    : Effect.void;

/** `eval step 175 (val, 101 images): mIoU 32.39 …`: the line every evaluation of a run logs. */
export const evaluationLine = <R>(evaluation: Evaluation<R>, step: number, split: string, r: R): string =>
  `eval step ${step} (${split}, ${evaluation.images(r)} images): ${evaluation.line(r)}`;

/** The metrics.jsonl line of an evaluation. */
export const evaluationMetrics = <R>(evaluation: Evaluation<R>, step: number, split: string, r: R) => ({
  kind: "eval",
  step,
  split,
  images: evaluation.images(r),
  units: "percent",
  ...evaluation.metrics(r),
});

/**
 * What best.safetensors is judged by: the headline on one named image set. A best recorded on another
 * set is not comparable, so the checkpoint store lets the new set take over.
 */
export const bestMetric = <R>(evaluation: Evaluation<R>, split: string, r: R) => ({
  metric: `${evaluation.headline.name} (${split}, ${evaluation.images(r)} images)`,
  value: evaluation.headlineValue(r),
  higherIsBetter: evaluation.headline.higherIsBetter,
});

/** Writes an evaluation's record into the run folder under the name its evaluation gets; returns the path. */
export const writeEvaluationRecord = <R>(
  dir: string,
  evaluation: Evaluation<R>,
  r: R,
  meta: RecordMeta,
  dataset: Dataset,
  naming: Omit<EvalRecordNaming, "split" | "oracle" | "mode" | "step">,
): Effect.Effect<string, EvalRecordError> =>
  Effect.gen(function* () {
    const name = yield* Effect.try({
      try: () =>
        evalRecordName({
          ...naming,
          split: meta.split,
          mode: meta.mode,
          oracle: meta.oracle,
          step: meta.step,
        }),
      catch: (e) => e as EvalRecordError,
    });
    const file = join(dir, name);
    yield* writeFileAtomic(file, JSON.stringify(evaluation.record(r, meta, dataset), null, 2) + "\n").pipe(
      Effect.mapError((e) => new EvalRecordError({ file, message: e.message })),
    );
    return file;
  });
