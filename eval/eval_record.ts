/**
 * `eval-<split>.json`: the result of one evaluation run, written by the eval step and read back by the
 * report. Every metric is a percentage (mIoU, mAcc, aAcc, per-class IoU and Acc, mAP), as mmsegmentation
 * prints them, at full precision; `units: "percent"` says so. `images` is how many images of the split
 * were evaluated, so two numbers are only compared when they come from the same image set. Values that
 * are undefined (a class absent from the split, no multi-label head) are null, since JSON has no NaN.
 * Records written before `units` existed held fractions (mAP excepted); reading converts them.
 */
import { Data, Effect, Schema } from "effect";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic_write.ts";
import { readJsonFile } from "../io/json_file.ts";
import type { SegmentationSummary } from "./segmentation_metrics.ts";
import { baseNovelMIoU } from "./base_novel.ts";

const Ratio = Schema.NullOr(Schema.Number);

export const ClassResult = Schema.Struct({
  name: Schema.String,
  iou: Ratio,
  acc: Ratio,
  /** LarvSeg: the class is one of the experiment's novel classes (absent = not split). */
  novel: Schema.optional(Schema.Boolean),
});

export const EvalRecord = Schema.Struct({
  split: Schema.String,
  /** Images evaluated (the first N of the split); absent in records written before it was recorded. */
  images: Schema.optional(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))),
  units: Schema.optional(Schema.Literal("percent")),
  step: Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0)),
  checkpoint: Schema.String,
  mIoU: Ratio,
  mAcc: Ratio,
  aAcc: Ratio,
  mAP: Ratio,
  /**
   * ξ's recall@κ in percent and its κ (eval/multilabel_ap.ts: the share of an image's ground-truth classes
   * among its top-κ scores, averaged over images), for models with a ranking and a κ. Absent in older records.
   */
  recallAtK: Schema.optional(Schema.NullOr(Schema.Struct({ k: Schema.Number, value: Ratio }))),
  /** LarvSeg: mIoU over the base and over the novel classes (`eval.novel`), when the experiment names them. */
  mIoUBase: Schema.optional(Ratio),
  mIoUNovel: Schema.optional(Ratio),
  classes: Schema.Array(ClassResult),
  /**
   * Classes labelled in every evaluated image: each one's multi-label AP is 100 whatever the scores (on
   * CamVid every frame holds all 11 classes, so mAP is 100 for any model). Absent in older records.
   */
  classesInEveryImage: Schema.optional(Schema.Array(Schema.String)),
  /** Classes labelled in at least one evaluated image: the classes mAP averages over. */
  classesPresent: Schema.optional(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))),
  /** How predictions were made, e.g. "whole" or "slide". */
  mode: Schema.String,
});
export type EvalRecord = typeof EvalRecord.Type;

export class EvalRecordError extends Data.TaggedError("EvalRecordError")<{
  readonly file: string;
  readonly message: string;
}> {}

const finiteOrNull = (x: number | null | undefined): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : x;

/** A fraction in [0, 1] as a percentage; null stays null. */
export const toPercent = (x: number | null | undefined): number | null => {
  const v = finiteOrNull(x);
  return v === null ? null : 100 * v;
};

/** File name for a split; split names become file names, so they are restricted to safe characters. */
export const evalFileName = (split: string): string => {
  if (!/^[A-Za-z0-9_.-]+$/.test(split) || split.startsWith(".")) {
    throw new EvalRecordError({
      file: `eval-${split}.json`,
      message: `split name ${JSON.stringify(split)} is not a safe file name`,
    });
  }
  return `eval-${split}.json`;
};

/** What tells one evaluation of a run from another, for naming its record. */
export interface EvalRecordNaming {
  readonly split: string;
  /** How predictions were made, and the run's own evaluation mode (`eval.mode`). */
  readonly mode: string;
  readonly runMode: string;
  /** `--limit N` / `--eval-limit N`: only the first N images. */
  readonly limit?: number;
  readonly oracle: boolean;
  /** The evaluated checkpoint's step, and the step the run's own (final) evaluation is of (`train.steps`). */
  readonly step: number;
  readonly finalStep: number;
}

/**
 * The file name of an evaluation's record: `eval-<split>.json` for the run's own evaluation (its last
 * checkpoint, its evaluation mode, every image of the split), with a suffix for each way another differs:
 * `-<mode>` (another prediction mode), `-first<N>` (a limit), `-oracle`, `-step<S>` (another checkpoint
 * than the final one), in that order; e.g. `eval-val-slide-first10.json`, `eval-val-step500.json`. So
 * `eval --mode slide --limit 10` never overwrites the run's 101-image `eval-val.json`.
 */
export const evalRecordName = (n: EvalRecordNaming): string => {
  const suffixes = [
    n.mode === n.runMode ? "" : `-${n.mode}`,
    n.limit === undefined ? "" : `-first${n.limit}`,
    n.oracle ? "-oracle" : "",
    n.step === n.finalStep ? "" : `-step${n.step}`,
  ];
  return evalFileName(n.split + suffixes.join(""));
};

export const makeEvalRecord = (
  { split, images, step, checkpoint, mode, classNames, segmentation, mAP, recallAtK, novel }: {
    split: string;
    images: number;
    step: number;
    checkpoint: string;
    mode: string;
    classNames: readonly string[];
    /** Fractions, as the accumulator computes them; the record holds percentages. */
    segmentation: SegmentationSummary;
    /** Already ×100, as `multilabelAccumulator` returns it. */
    mAP?: number | null;
    /** ξ's recall@κ, already ×100, and κ. */
    recallAtK?: { readonly k: number; readonly value: number } | null;
    /** [K] 1 = a novel class (`novelMask`): adds mIoUBase / mIoUNovel and marks the classes. */
    novel?: Uint8Array;
  },
): EvalRecord => ({
  split,
  images,
  units: "percent",
  step,
  checkpoint,
  mIoU: toPercent(segmentation.mIoU),
  mAcc: toPercent(segmentation.mAcc),
  aAcc: toPercent(segmentation.aAcc),
  mAP: finiteOrNull(mAP),
  ...(recallAtK ? { recallAtK: { k: recallAtK.k, value: finiteOrNull(recallAtK.value) } } : {}),
  ...(novel === undefined ? {} : (() => {
    const split = baseNovelMIoU(segmentation.iou, novel);
    return { mIoUBase: toPercent(split.base), mIoUNovel: toPercent(split.novel) };
  })()),
  classes: Array.from(segmentation.iou, (iou, c) => ({
    name: classNames[c] ?? `class_${c}`,
    iou: toPercent(iou),
    acc: toPercent(segmentation.acc[c]),
    ...(novel === undefined ? {} : { novel: novel[c] === 1 }),
  })),
  ...classPresence(segmentation, classNames),
  mode,
});

/** Which classes occur in every evaluated image and how many occur at all (when the summary counted them). */
const classPresence = (s: SegmentationSummary, classNames: readonly string[]) => {
  const perClass = s.imagesPerClass;
  if (perClass === undefined || s.images === undefined || s.images === 0) return {};
  const everywhere = [...perClass.keys()].filter((c) => perClass[c] === s.images);
  return {
    classesInEveryImage: everywhere.map((c) => classNames[c] ?? `class_${c}`),
    classesPresent: perClass.filter((n) => n > 0).length,
  };
};

/** Writes `<runDir>/eval-<split>.json` atomically and returns its path. */
export const writeEvalRecord = (runDir: string, record: EvalRecord): Effect.Effect<string, EvalRecordError> =>
  Effect.gen(function* () {
    const name = yield* Effect.try({
      try: () => evalFileName(record.split),
      catch: (e) => e as EvalRecordError,
    });
    const file = join(runDir, name);
    yield* writeFileAtomic(file, JSON.stringify(record, null, 2) + "\n").pipe(
      Effect.mapError((e) => new EvalRecordError({ file, message: e.message })),
    );
    return file;
  });

/** Reads and validates an eval record; errors name the file and the field at fault. */
export const readEvalRecord = (file: string): Effect.Effect<EvalRecord, EvalRecordError> =>
  Effect.gen(function* () {
    const fail = (problem: string) => new EvalRecordError({ file, message: `${file}: ${problem}` });
    const json = yield* readJsonFile(file).pipe(
      Effect.mapError((e) => new EvalRecordError({ file, message: e.message })),
    );
    const record = yield* Schema.decodeUnknownEffect(EvalRecord)(json).pipe(
      Effect.mapError((e) => fail(e.message.replace(/\s*\n\s*/g, " "))),
    );
    return inPercent(record);
  });

/** A record in percent: records from before `units` held fractions (mAP was already ×100). */
export const inPercent = (r: EvalRecord): EvalRecord =>
  r.units === "percent" ? r : {
    ...r,
    units: "percent",
    mIoU: toPercent(r.mIoU),
    mAcc: toPercent(r.mAcc),
    aAcc: toPercent(r.aAcc),
    classes: r.classes.map((c) => ({ ...c, iou: toPercent(c.iou), acc: toPercent(c.acc) })),
  };
