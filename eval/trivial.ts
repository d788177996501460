/**
 * The trivial predictor results are compared against: every pixel gets the most frequent class of the
 * training split. Its mIoU follows from pixel counts alone: that class's IoU is its share of the
 * labeled test pixels (the prediction covers all of them), every other class present scores 0.
 */
import { Effect } from "effect";
import type { DatasetSpec } from "../dsl/dataset.ts";
import { validateSplit } from "../data/validate.ts";

export interface MajorityBaseline {
  readonly classId: number;
  readonly className: string;
  readonly mIoU: number;
  /** Pixel accuracy: the predicted class's share of the labeled test pixels. */
  readonly aAcc: number;
}

/** mIoU from test pixel counts when every labeled pixel is predicted as `c`. */
export const majorityMiou = (testCounts: readonly number[], c: number): number => {
  const total = testCounts.reduce((a, b) => a + b, 0);
  const present = testCounts.filter((n, k) => n > 0 || k === c).length;
  return total === 0 ? 0 : testCounts[c] / total / present;
};

/** Pixel accuracy from test pixel counts when every labeled pixel is predicted as `c`. */
export const majorityAAcc = (testCounts: readonly number[], c: number): number => {
  const total = testCounts.reduce((a, b) => a + b, 0);
  return total === 0 ? 0 : testCounts[c] / total;
};

export const majorityBaseline = (spec: DatasetSpec, trainSplit: string, testSplit: string) =>
  Effect.gen(function* () {
    const train = yield* validateSplit(spec, trainSplit);
    const test = yield* validateSplit(spec, testSplit);
    const c = train.pixelCounts.indexOf(Math.max(...train.pixelCounts));
    return {
      classId: c,
      className: train.classNames[c],
      mIoU: majorityMiou(test.pixelCounts, c),
      aAcc: majorityAAcc(test.pixelCounts, c),
    } satisfies MajorityBaseline;
  });
