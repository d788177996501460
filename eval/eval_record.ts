/**
 * `eval-<split>.json`: the result of one evaluation run, written by the eval step and read back by the
 * report. Ratios are fractions in [0, 1] except mAP, which is ×100; values that are undefined (a class
 * absent from the split, no multi-label head) are null, since JSON has no NaN.
 */
import { Data, Effect, Schema } from "effect";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic_write.ts";
import type { SegmentationSummary } from "./segmentation_metrics.ts";

const Ratio = Schema.NullOr(Schema.Number);

export const ClassResult = Schema.Struct({ name: Schema.String, iou: Ratio, acc: Ratio });

export const EvalRecord = Schema.Struct({
  split: Schema.String,
  step: Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0)),
  checkpoint: Schema.String,
  mIoU: Ratio,
  mAcc: Ratio,
  aAcc: Ratio,
  mAP: Ratio,
  classes: Schema.Array(ClassResult),
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

export const makeEvalRecord = (
  { split, step, checkpoint, mode, classNames, segmentation, mAP }: {
    split: string;
    step: number;
    checkpoint: string;
    mode: string;
    classNames: readonly string[];
    segmentation: SegmentationSummary;
    mAP?: number | null;
  },
): EvalRecord => ({
  split,
  step,
  checkpoint,
  mIoU: finiteOrNull(segmentation.mIoU),
  mAcc: finiteOrNull(segmentation.mAcc),
  aAcc: finiteOrNull(segmentation.aAcc),
  mAP: finiteOrNull(mAP),
  classes: Array.from(segmentation.iou, (iou, c) => ({
    name: classNames[c] ?? `class_${c}`,
    iou: finiteOrNull(iou),
    acc: finiteOrNull(segmentation.acc[c]),
  })),
  mode,
});

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
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) => fail(`cannot read (${e instanceof Error ? e.message : e})`),
    });
    const json = yield* Effect.try({
      try: () => JSON.parse(text) as unknown,
      catch: (e) => fail(`not JSON (${e instanceof Error ? e.message : e})`),
    });
    return yield* Schema.decodeUnknownEffect(EvalRecord)(json).pipe(
      Effect.mapError((e) => fail(e.message.replace(/\s*\n\s*/g, " "))),
    );
  });
