/**
 * The headline of a finished run's evaluation record (`eval-<split>.json`), whatever the model kind: PQ
 * for a panoptic run (its record holds fractions), mIoU otherwise (percent; fractions in records older
 * than `units`), with the multi-label mAP where there is one. Reads the JSON only: no spec, no runtime.
 */
import { readFileSync } from "node:fs";

export interface Headline {
  readonly metric: "PQ" | "mIoU";
  /** Percent. */
  readonly value: number;
  readonly mAP?: number;
}

export const headline = (record: string): Headline => {
  const r = JSON.parse(readFileSync(record, "utf8"));
  if (typeof r.pq?.all?.pq === "number") return { metric: "PQ", value: 100 * r.pq.all.pq };
  if (typeof r.mIoU !== "number") throw new Error(`${record}: neither pq.all.pq nor mIoU`);
  return {
    metric: "mIoU",
    value: r.units === "percent" ? r.mIoU : 100 * r.mIoU,
    ...(typeof r.mAP === "number" ? { mAP: r.mAP } : {}),
  };
};

/** "mIoU 16.78", "PQ 21.40". */
export const headlineText = (h: Headline): string => `${h.metric} ${h.value.toFixed(2)}`;
