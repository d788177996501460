/**
 * LarvSeg's evaluation split: mIoU over all classes, over the base classes (trained with masks) and over
 * the novel ones (image-level labels only), each the NaN-skipping mean of the dataset-level per-class
 * IoUs of its subset (DESIGN.md: per-class IoU over the dataset, then the mean over each subset).
 */
import { Data, Effect } from "effect";
import { nanMean } from "./segmentation_metrics.ts";

/** A novel class the experiment names is not in the dataset's class table. */
export class UnknownNovelClass extends Data.TaggedError("UnknownNovelClass")<{
  readonly names: readonly string[];
  readonly dataset: string;
}> {
  override get message(): string {
    return `eval.novel: ${this.names.map((n) => `"${n}"`).join(", ")} not in the classes of ${this.dataset}`;
  }
}

/** The [K] 0/1 mask of the novel classes named in `novel`, checked against `classNames`. */
export const novelMask = (
  classNames: readonly string[],
  novel: readonly string[] | undefined,
  dataset: string,
): Effect.Effect<Uint8Array | undefined, UnknownNovelClass> => {
  if (novel === undefined || novel.length === 0) return Effect.succeed(undefined);
  const unknown = novel.filter((n) => !classNames.includes(n));
  if (unknown.length > 0) return Effect.fail(new UnknownNovelClass({ names: unknown, dataset }));
  const mask = new Uint8Array(classNames.length);
  for (const n of novel) mask[classNames.indexOf(n)] = 1;
  return Effect.succeed(mask);
};

/** mIoU over the base (mask 0) and the novel (mask 1) classes, as fractions; NaN for an empty subset. */
export const baseNovelMIoU = (iou: ArrayLike<number>, novel: Uint8Array): { base: number; novel: number } => {
  const pick = (want: number) => Array.from(iou).filter((_, c) => novel[c] === want);
  return { base: nanMean(pick(0)), novel: nanMean(pick(1)) };
};
