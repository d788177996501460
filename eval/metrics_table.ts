/**
 * The per-class table the CLI prints after an evaluation: IoU and Acc per class in percent (two
 * decimals, like mmseg's log), absent classes as "nan", then the summary lines. The last line is always
 * `mIoU=<x> mAP=<y>` so scripts can grep it; mAP is `n/a` when the run has no multi-label head.
 */
import type { SegmentationSummary } from "./segmentation_metrics.ts";
import { baseNovelMIoU } from "./base_novel.ts";

const percent = (x: number | null | undefined): string =>
  x === null || x === undefined || Number.isNaN(x) ? "nan" : (100 * x).toFixed(2);

export interface MetricsTableInput {
  readonly classNames: readonly string[];
  readonly segmentation: SegmentationSummary;
  /** Already ×100 (as `multilabelAccumulator` returns it); absent or NaN prints `n/a`. */
  readonly mAP?: number | null;
  /** [K] 1 = a novel class: marked `*` and summarized as base/novel mIoU. */
  readonly novel?: Uint8Array;
}

export const formatMetricsTable = ({ classNames, segmentation, mAP, novel }: MetricsTableInput): string => {
  const { iou, acc } = segmentation;
  const names = Array.from(
    { length: iou.length },
    (_, c) => `${classNames[c] ?? `class_${c}`}${novel?.[c] === 1 ? " *" : ""}`,
  );
  const nameWidth = Math.max(5, ...names.map((n) => n.length));
  const row = (name: string, a: string, b: string) =>
    `${name.padEnd(nameWidth)}  ${a.padStart(7)}  ${b.padStart(7)}`;
  const rule = "-".repeat(nameWidth + 18);
  const lines = [
    row("Class", "IoU", "Acc"),
    rule,
    ...names.map((name, c) => row(name, percent(iou[c]), percent(acc[c]))),
    rule,
    `aAcc=${percent(segmentation.aAcc)} mAcc=${percent(segmentation.mAcc)}`,
    ...(novel === undefined ? [] : (() => {
      const s = baseNovelMIoU(iou, novel);
      return [`mIoU base=${percent(s.base)} novel=${percent(s.novel)} (* = novel class)`];
    })()),
    `mIoU=${percent(segmentation.mIoU)} mAP=${
      mAP === null || mAP === undefined || Number.isNaN(mAP) ? "n/a" : mAP.toFixed(2)
    }`,
  ];
  return lines.join("\n");
};
