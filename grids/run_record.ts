/**
 * The headline of a finished run's evaluation record (`eval-<split>.json`), whatever the model kind: PQ
 * for a panoptic run (its record holds fractions), mAP for a multi-label-only one, mIoU otherwise (percent;
 * fractions in records older than `units`), with the multi-label mAP where there is one. Reads the JSON only: no spec, no runtime.
 */
import { readFileSync } from "node:fs";

export interface Headline {
  readonly metric: "PQ" | "mIoU" | "mAP";
  /** Percent. */
  readonly value: number;
  readonly mAP?: number;
  /**
   * The headline over two class groups, in percent, where the record has them: things / stuff for PQ,
   * base / novel classes for a model with novel classes (LarvSeg).
   */
  readonly split?: { readonly names: readonly [string, string]; readonly values: readonly [number, number] };
}

export const headline = (record: string): Headline => {
  const r = JSON.parse(readFileSync(record, "utf8"));
  if (typeof r.pq?.all?.pq === "number") {
    const [th, st] = [r.pq.things?.pq, r.pq.stuff?.pq];
    return {
      metric: "PQ",
      value: 100 * r.pq.all.pq,
      ...(typeof th === "number" && typeof st === "number"
        ? { split: { names: ["PQ_th", "PQ_st"], values: [100 * th, 100 * st] } }
        : {}),
    };
  }
  // A multi-label-only model (ξ alone) predicts no pixels: its headline is ξ's mAP (percent).
  if (typeof r.mIoU !== "number" && typeof r.mAP === "number") {
    return { metric: "mAP", value: r.mAP, mAP: r.mAP };
  }
  if (typeof r.mIoU !== "number") throw new Error(`${record}: neither pq.all.pq nor mIoU nor mAP`);
  const scale = r.units === "percent" ? 1 : 100;
  return {
    metric: "mIoU",
    value: scale * r.mIoU,
    ...(typeof r.mAP === "number" ? { mAP: r.mAP } : {}),
    ...(typeof r.mIoUBase === "number" && typeof r.mIoUNovel === "number"
      ? { split: { names: ["base", "novel"], values: [scale * r.mIoUBase, scale * r.mIoUNovel] } }
      : {}),
  };
};

/** "mIoU 16.78", "PQ 21.40". */
export const headlineText = (h: Headline): string => `${h.metric} ${h.value.toFixed(2)}`;
