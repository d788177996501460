/**
 * Panoptic quality with panopticapi `pq_compute` semantics.
 *
 * Each image is a segment-id map plus the list of its segments. Id `voidId` (0, as in panopticapi's
 * PNGs) marks unlabelled pixels in both maps. Per image:
 *  - a ground-truth and a predicted segment of the same category match when
 *    IoU = |P∩G| / (|P| + |G| − |P∩G| − |P ∩ void|) > 0.5 (predicted pixels on void do not count
 *    against the prediction); crowd ground-truth segments never match. IoU > 0.5 makes matches unique.
 *  - unmatched non-crowd ground truth is a false negative of its category;
 *  - an unmatched prediction is a false positive unless more than half of its pixels lie on void or on
 *    crowd ground truth of its own category, in which case it is ignored.
 * Over the dataset, per category: PQ = Σ IoU(tp) / (TP + FP/2 + FN/2), SQ = Σ IoU(tp) / TP (0 when
 * TP = 0), RQ = TP / (TP + FP/2 + FN/2). PQ/SQ/RQ for All, Things and Stuff are plain means over the
 * categories of that group with TP + FP + FN > 0; `n` says how many. Values are fractions.
 *
 * One deliberate generalization: panopticapi keeps a single crowd region per category per image (the
 * COCO format merges them); if several crowd segments share a category here, all of them count.
 */
import { metricsInputError } from "./metrics_error.ts";

export interface PanopticCategory {
  readonly id: number;
  readonly isThing: boolean;
  readonly name?: string;
}

export interface PredictedSegment {
  readonly id: number;
  readonly category: number;
}

export interface GroundTruthSegment {
  readonly id: number;
  readonly category: number;
  readonly iscrowd?: boolean | number;
}

export interface PanopticPrediction {
  readonly ids: Int32Array;
  readonly segments: readonly PredictedSegment[];
}

export interface PanopticGroundTruth {
  readonly ids: Int32Array;
  readonly segments: readonly GroundTruthSegment[];
}

/** Dataset totals of one category. */
export interface CategoryCounts {
  tp: number;
  fp: number;
  fn: number;
  iouSum: number;
}

export interface PqScores {
  readonly pq: number;
  readonly sq: number;
  readonly rq: number;
  /** Categories averaged (those with TP + FP + FN > 0). */
  readonly n: number;
}

export interface CategoryPq {
  readonly id: number;
  readonly name: string;
  readonly isThing: boolean;
  readonly tp: number;
  readonly fp: number;
  readonly fn: number;
  /** null when the category never occurred (TP + FP + FN = 0); such categories are not averaged. */
  readonly pq: number | null;
  readonly sq: number | null;
  readonly rq: number | null;
}

export interface PanopticSummary {
  /** NaN means and n = 0 when no category of the group occurred. */
  readonly all: PqScores;
  readonly things: PqScores;
  readonly stuff: PqScores;
  readonly perCategory: readonly CategoryPq[];
}

export interface PanopticAccumulator {
  readonly add: (prediction: PanopticPrediction, groundTruth: PanopticGroundTruth) => void;
  readonly counts: () => ReadonlyMap<number, Readonly<CategoryCounts>>;
  readonly summary: () => PanopticSummary;
}

const METRIC = "panoptic";

/** Dense indices for an image's segment list; the void id maps to the extra last slot. */
const indexSegments = (
  segments: readonly { id: number; category: number }[],
  categories: ReadonlyMap<number, PanopticCategory>,
  voidId: number,
  field: string,
  image: number,
): Map<number, number> => {
  const index = new Map<number, number>();
  segments.forEach((segment, i) => {
    if (segment.id === voidId) {
      throw metricsInputError(METRIC, field, `image ${image}: segment id ${voidId} is the void id`);
    }
    if (index.has(segment.id)) {
      throw metricsInputError(METRIC, field, `image ${image}: segment id ${segment.id} is listed twice`);
    }
    if (!categories.has(segment.category)) {
      throw metricsInputError(
        METRIC,
        field,
        `image ${image}: segment ${segment.id} has unknown category ${segment.category}`,
      );
    }
    index.set(segment.id, i);
  });
  return index;
};

const isCrowd = (segment: GroundTruthSegment) => segment.iscrowd === true || segment.iscrowd === 1;

export const panopticAccumulator = (
  { categories, voidId = 0 }: { categories: readonly PanopticCategory[]; voidId?: number },
): PanopticAccumulator => {
  const categoryById = new Map(categories.map((c) => [c.id, c]));
  if (categoryById.size !== categories.length) {
    throw metricsInputError(METRIC, "categories", "a category id is listed twice");
  }
  const totals = new Map<number, CategoryCounts>(
    categories.map((c) => [c.id, { tp: 0, fp: 0, fn: 0, iouSum: 0 }]),
  );
  let images = 0;

  const add = (prediction: PanopticPrediction, groundTruth: PanopticGroundTruth) => {
    const image = images;
    if (prediction.ids.length !== groundTruth.ids.length) {
      throw metricsInputError(
        METRIC,
        "prediction.ids",
        `image ${image}: has ${prediction.ids.length} pixels but groundTruth.ids has ${groundTruth.ids.length}`,
      );
    }
    const predIndex = indexSegments(prediction.segments, categoryById, voidId, "prediction.segments", image);
    const gtIndex = indexSegments(groundTruth.segments, categoryById, voidId, "groundTruth.segments", image);
    const nPred = prediction.segments.length;
    const nGt = groundTruth.segments.length;
    const cols = nPred + 1; // last column: predicted void
    // joint[g * cols + p]: pixels with ground-truth slot g and predicted slot p; row nGt is gt void.
    const joint = new Float64Array((nGt + 1) * cols);
    let lastGtId = NaN, lastGtSlot = nGt;
    let lastPredId = NaN, lastPredSlot = nPred;
    for (let i = 0; i < prediction.ids.length; i++) {
      const gtId = groundTruth.ids[i];
      if (gtId !== lastGtId) {
        const slot = gtId === voidId ? nGt : gtIndex.get(gtId);
        if (slot === undefined) {
          throw metricsInputError(
            METRIC,
            "groundTruth.ids",
            `image ${image}: segment id ${gtId} is in the map but not in the segment list`,
          );
        }
        lastGtId = gtId;
        lastGtSlot = slot;
      }
      const predId = prediction.ids[i];
      if (predId !== lastPredId) {
        const slot = predId === voidId ? nPred : predIndex.get(predId);
        if (slot === undefined) {
          throw metricsInputError(
            METRIC,
            "prediction.ids",
            `image ${image}: segment id ${predId} is in the map but not in the segment list`,
          );
        }
        lastPredId = predId;
        lastPredSlot = slot;
      }
      joint[lastGtSlot * cols + lastPredSlot]++;
    }

    const predArea = new Float64Array(nPred);
    const gtArea = new Float64Array(nGt);
    for (let g = 0; g <= nGt; g++) {
      for (let p = 0; p <= nPred; p++) {
        const v = joint[g * cols + p];
        if (p < nPred) predArea[p] += v;
        if (g < nGt) gtArea[g] += v;
      }
    }
    prediction.segments.forEach((segment, p) => {
      if (predArea[p] === 0) {
        throw metricsInputError(
          METRIC,
          "prediction.segments",
          `image ${image}: segment ${segment.id} is listed but has no pixels in the map`,
        );
      }
    });

    const gtMatched = new Uint8Array(nGt);
    const predMatched = new Uint8Array(nPred);
    for (let g = 0; g < nGt; g++) {
      const gt = groundTruth.segments[g];
      if (isCrowd(gt)) continue;
      for (let p = 0; p < nPred; p++) {
        const intersection = joint[g * cols + p];
        if (intersection === 0 || prediction.segments[p].category !== gt.category) continue;
        const onVoid = joint[nGt * cols + p];
        const iou = intersection / (predArea[p] + gtArea[g] - intersection - onVoid);
        if (iou > 0.5) {
          const t = totals.get(gt.category)!;
          t.tp++;
          t.iouSum += iou;
          gtMatched[g] = 1;
          predMatched[p] = 1;
        }
      }
    }
    for (let g = 0; g < nGt; g++) {
      const gt = groundTruth.segments[g];
      if (!gtMatched[g] && !isCrowd(gt)) totals.get(gt.category)!.fn++;
    }
    for (let p = 0; p < nPred; p++) {
      if (predMatched[p]) continue;
      const category = prediction.segments[p].category;
      let ignoredPixels = joint[nGt * cols + p];
      for (let g = 0; g < nGt; g++) {
        const gt = groundTruth.segments[g];
        if (isCrowd(gt) && gt.category === category) ignoredPixels += joint[g * cols + p];
      }
      if (ignoredPixels / predArea[p] > 0.5) continue;
      totals.get(category)!.fp++;
    }
    images++;
  };

  const summary = (): PanopticSummary => {
    const perCategory: CategoryPq[] = categories.map((c) => {
      const { tp, fp, fn, iouSum } = totals.get(c.id)!;
      const base = { id: c.id, name: c.name ?? String(c.id), isThing: c.isThing, tp, fp, fn };
      if (tp + fp + fn === 0) return { ...base, pq: null, sq: null, rq: null };
      const denominator = tp + 0.5 * fp + 0.5 * fn;
      return { ...base, pq: iouSum / denominator, sq: tp === 0 ? 0 : iouSum / tp, rq: tp / denominator };
    });
    const average = (keep: (c: CategoryPq) => boolean): PqScores => {
      const occurring = perCategory.filter((c) => keep(c) && c.pq !== null);
      const n = occurring.length;
      const mean = (pick: (c: CategoryPq) => number) =>
        n === 0 ? NaN : occurring.reduce((s, c) => s + pick(c), 0) / n;
      return { pq: mean((c) => c.pq!), sq: mean((c) => c.sq!), rq: mean((c) => c.rq!), n };
    };
    return {
      all: average(() => true),
      things: average((c) => c.isThing),
      stuff: average((c) => !c.isThing),
      perCategory,
    };
  };

  // Copies, so callers cannot disturb the running totals.
  const counts = () => new Map([...totals].map(([id, c]) => [id, { ...c }]));
  return { add, counts, summary };
};
