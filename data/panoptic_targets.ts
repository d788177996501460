/**
 * Training targets of a panoptic mask transformer from a COCO panoptic annotation: the ground-truth masks
 * that queries are matched to (kMaX-DeepLab's convention).
 *
 * - one mask per thing instance, one per stuff class (stuff segments of the same class merge: a class
 *   map may send several COCO categories to one training class);
 * - crowd segments, void pixels (id 0) and segments whose class the dataset ignores are no target: their
 *   pixels have no mask id and the semantic label `ignoreIndex`;
 * - masks are padded to `maxMasks` (the query count, or more) and `valid` says which are real.
 *
 * More ground-truth masks than `maxMasks` cannot all be matched; the smallest are dropped (stuff regions
 * and large instances weigh most in the dice terms), their pixels get no mask id (the mask losses ignore
 * them; the semantic label keeps their class), and the drop is counted in `truncated` — never silent:
 * `truncationReport` sums it over a run and says it in one line.
 *
 * Works on any segment-id map (the PNG's, or one that went through the same crop/resize/flip as the
 * image): areas come from the map, and a listed segment with no pixels left is no target.
 */
import { InvalidLabels } from "./errors.ts";

/** What the targets need of a segment (a `Segment` of `coco.ts` has these fields). */
export interface TargetSegment {
  /** Its id in the segment-id map. */
  readonly id: number;
  /** Training id, or the ignore index when the dataset drops the category. */
  readonly category: number;
  readonly isThing: boolean;
  readonly isCrowd: boolean;
}

export interface PanopticTargets {
  readonly maxMasks: number;
  /** Real masks, 0..maxMasks; they come first, in the order of their first segment in the list. */
  readonly count: number;
  /** [maxMasks] training class of each mask, −1 for padding. */
  readonly classes: Int32Array;
  /** [maxMasks] 1 for a thing instance, 0 for stuff or padding. */
  readonly isThing: Uint8Array;
  /** [maxMasks] pixel count of each mask, 0 for padding. */
  readonly areas: Int32Array;
  /** [pixels] the mask each pixel belongs to, −1 for none (void, crowd, ignored class, dropped). */
  readonly maskIds: Int32Array;
  /** [pixels] training class, `ignoreIndex` on void, crowd and ignored classes. */
  readonly semantic: Int32Array;
  /** Masks dropped because there were more than `maxMasks`, and their pixels. */
  readonly truncated: { readonly masks: number; readonly pixels: number };
}

export interface TargetOptions {
  /** Masks per image after padding; at least the number of queries for matching to see every mask. */
  readonly maxMasks: number;
  readonly ignoreIndex?: number;
  /** Names the annotation in errors (file or sample id). */
  readonly source?: string;
}

/**
 * Builds the targets of one image. Throws `InvalidLabels` if the map holds an id that no segment lists,
 * or a segment id is listed twice.
 */
export const panopticTargets = (
  segmentIds: Int32Array,
  segments: readonly TargetSegment[],
  { maxMasks, ignoreIndex = 255, source = "panoptic targets" }: TargetOptions,
): PanopticTargets => {
  if (!Number.isInteger(maxMasks) || maxMasks < 1) {
    throw new InvalidLabels({
      file: source,
      message: `maxMasks must be a positive integer, got ${maxMasks}`,
    });
  }
  // Segment → candidate mask: things get their own, stuff shares one per class; crowd/ignored: none.
  const slotOfSegment = new Map<number, number>();
  const stuffSlot = new Map<number, number>();
  const candidates: { category: number; isThing: boolean }[] = [];
  for (const s of segments) {
    if (slotOfSegment.has(s.id)) {
      throw new InvalidLabels({ file: source, message: `segment id ${s.id} is listed twice` });
    }
    let slot = -1;
    if (!s.isCrowd && s.category !== ignoreIndex) {
      const shared = s.isThing ? undefined : stuffSlot.get(s.category);
      slot = shared ?? candidates.push({ category: s.category, isThing: s.isThing }) - 1;
      if (!s.isThing) stuffSlot.set(s.category, slot);
    }
    slotOfSegment.set(s.id, slot);
  }
  const categoryOf = new Map(segments.map((s) => [s.id, s.category]));

  // Per pixel: the candidate slot (−1 none) and the semantic label; candidate areas.
  const pixels = segmentIds.length;
  const slotOfPixel = new Int32Array(pixels);
  const semantic = new Int32Array(pixels);
  const area = new Int32Array(candidates.length);
  let lastId = NaN, lastSlot = -1, lastClass = ignoreIndex;
  for (let p = 0; p < pixels; p++) {
    const id = segmentIds[p];
    if (id !== lastId) {
      lastId = id;
      if (id === 0) [lastSlot, lastClass] = [-1, ignoreIndex];
      else {
        const slot = slotOfSegment.get(id);
        if (slot === undefined) {
          throw new InvalidLabels({ file: source, message: `segment id ${id} is in the map but not listed` });
        }
        [lastSlot, lastClass] = [slot, slot < 0 ? ignoreIndex : categoryOf.get(id)!];
      }
    }
    slotOfPixel[p] = lastSlot;
    semantic[p] = lastClass;
    if (lastSlot >= 0) area[lastSlot]++;
  }

  // Keep the candidates that have pixels; beyond maxMasks keep the largest (ties: the earlier one).
  const present = candidates.map((_, k) => k).filter((k) => area[k] > 0);
  const kept = new Set(
    present.length <= maxMasks
      ? present
      : [...present].sort((a, b) => area[b] - area[a] || a - b).slice(0, maxMasks),
  );
  const maskOfSlot = new Int32Array(candidates.length).fill(-1);
  const classes = new Int32Array(maxMasks).fill(-1);
  const isThing = new Uint8Array(maxMasks);
  const areas = new Int32Array(maxMasks);
  let count = 0, droppedPixels = 0;
  for (const k of present) {
    if (!kept.has(k)) {
      droppedPixels += area[k];
      continue;
    }
    maskOfSlot[k] = count;
    classes[count] = candidates[k].category;
    isThing[count] = candidates[k].isThing ? 1 : 0;
    areas[count] = area[k];
    count++;
  }
  const maskIds = new Int32Array(pixels);
  for (let p = 0; p < pixels; p++) maskIds[p] = slotOfPixel[p] < 0 ? -1 : maskOfSlot[slotOfPixel[p]];
  return {
    maxMasks,
    count,
    classes,
    isThing,
    areas,
    maskIds,
    semantic,
    truncated: { masks: present.length - count, pixels: droppedPixels },
  };
};

/** A batch of targets as graph feeds: int64 arrays, row-major, the batch first. */
export interface TargetBatch {
  /** [b] real masks per image (the matching stage's counts). */
  readonly counts: BigInt64Array;
  /** [b, maxMasks] class per mask; padding holds `padClass` (e.g. K, the void class). */
  readonly classes: BigInt64Array;
  /** [b, pixels] mask id per pixel; `maxMasks` where there is none (a one-hot of depth maxMasks + 1). */
  readonly maskIds: BigInt64Array;
  /** [b, pixels] semantic label per pixel. */
  readonly semantic: BigInt64Array;
}

/** Stacks the targets of a batch (same maxMasks and pixel count) into graph feeds. */
export const stackTargets = (targets: readonly PanopticTargets[], padClass: number): TargetBatch => {
  const [first] = targets;
  const m = first?.maxMasks ?? 0;
  const p = first?.maskIds.length ?? 0;
  const counts = new BigInt64Array(targets.length);
  const classes = new BigInt64Array(targets.length * m);
  const maskIds = new BigInt64Array(targets.length * p);
  const semantic = new BigInt64Array(targets.length * p);
  targets.forEach((t, b) => {
    if (t.maxMasks !== m || t.maskIds.length !== p) {
      throw new InvalidLabels({
        file: "panoptic targets",
        message: `image ${b} has ${t.maxMasks} masks × ${t.maskIds.length} pixels, image 0 ${m} × ${p}`,
      });
    }
    counts[b] = BigInt(t.count);
    for (let k = 0; k < m; k++) classes[b * m + k] = BigInt(k < t.count ? t.classes[k] : padClass);
    for (let i = 0; i < p; i++) {
      maskIds[b * p + i] = BigInt(t.maskIds[i] < 0 ? m : t.maskIds[i]);
      semantic[b * p + i] = BigInt(t.semantic[i]);
    }
  });
  return { counts, classes, maskIds, semantic };
};

/** Running totals of truncation over the images of a run. */
export interface TruncationTotals {
  readonly images: number;
  readonly truncatedImages: number;
  readonly droppedMasks: number;
  readonly droppedPixels: number;
  /** Pixels covered by masks, kept or dropped. */
  readonly maskPixels: number;
  /** The largest number of masks an image had before truncation. */
  readonly mostMasks: number;
}

export const NO_TRUNCATION: TruncationTotals = {
  images: 0,
  truncatedImages: 0,
  droppedMasks: 0,
  droppedPixels: 0,
  maskPixels: 0,
  mostMasks: 0,
};

/** Adds one image's targets to the totals. */
export const countTruncation = (totals: TruncationTotals, t: PanopticTargets): TruncationTotals => {
  const kept = t.areas.reduce((s, a) => s + a, 0);
  return {
    images: totals.images + 1,
    truncatedImages: totals.truncatedImages + (t.truncated.masks > 0 ? 1 : 0),
    droppedMasks: totals.droppedMasks + t.truncated.masks,
    droppedPixels: totals.droppedPixels + t.truncated.pixels,
    maskPixels: totals.maskPixels + kept + t.truncated.pixels,
    mostMasks: Math.max(totals.mostMasks, t.count + t.truncated.masks),
  };
};

/** One line for logs and reports; says so explicitly when nothing was dropped. */
export const truncationReport = (totals: TruncationTotals, maxMasks: number): string => {
  if (totals.droppedMasks === 0) {
    return `panoptic targets: no image had more than ${maxMasks} ground-truth masks ` +
      `(most: ${totals.mostMasks}, ${totals.images} images)`;
  }
  const share = (100 * totals.droppedPixels / Math.max(totals.maskPixels, 1)).toFixed(2);
  return `panoptic targets: ${totals.truncatedImages} of ${totals.images} images had more than ${maxMasks} ` +
    `ground-truth masks (most: ${totals.mostMasks}); the ${totals.droppedMasks} smallest were dropped ` +
    `(${share}% of mask pixels), their pixels ignored by the mask losses`;
};
