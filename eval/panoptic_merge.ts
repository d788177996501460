/**
 * Mask-wise merging: a mask transformer's per-query class and mask logits → one image's panoptic map
 * (the host step after the inference graph; kMaX-DeepLab's rules, thresholds from DESIGN.md).
 *
 * 1. Per query: class probabilities = softmax over K + 1 with the void column dropped (not
 *    renormalized); its class is the most probable of the K, its confidence that probability.
 * 2. Per pixel: mask probabilities = softmax over queries; query n's binary mask = probability > 0.4.
 * 3. Queries are sorted by confidence × mean mask probability over their binary mask, best first, and
 *    pasted in that order. A query is kept if its confidence ≥ 0.7 (thing) / 0.5 (stuff), and more than
 *    0.8 of its binary mask is still free, and the free part has at least `minArea` pixels; it claims
 *    only the free pixels. A stuff query of a class that already has a segment joins that segment.
 * 4. Unclaimed pixels are void (id 0).
 *
 * `minArea` ("drop small segments"; DESIGN.md gives no number) defaults to 0: nothing is dropped for
 * size unless asked.
 */
export interface MergeOptions {
  readonly maskThreshold?: number;
  readonly thingThreshold?: number;
  readonly stuffThreshold?: number;
  readonly overlapThreshold?: number;
  readonly minArea?: number;
}

export const MERGE_DEFAULTS: Required<MergeOptions> = {
  maskThreshold: 0.4,
  thingThreshold: 0.7,
  stuffThreshold: 0.5,
  overlapThreshold: 0.8,
  minArea: 0,
};

export interface MergedSegment {
  /** 1, 2, … in paste order. */
  readonly id: number;
  readonly category: number;
  readonly isThing: boolean;
  /** The class confidence of the (first) query that made it. */
  readonly score: number;
  readonly area: number;
}

export interface PanopticMap {
  /** [pixels] segment id, 0 = void. */
  readonly ids: Int32Array;
  readonly segments: readonly MergedSegment[];
}

/** What merging computes before any class threshold: per query its class, confidence, mask and score. */
export interface PreparedMerge {
  readonly queries: number;
  readonly pixels: number;
  readonly maskThreshold: number;
  readonly category: Int32Array;
  readonly confidence: Float64Array;
  /** [N, P] mask probabilities (softmax over queries per pixel). */
  readonly probs: Float64Array;
  /** Pixels of each query's binary mask (probability > maskThreshold). */
  readonly area: Int32Array;
  /** Queries, best score (confidence × mean mask probability) first; ties: lower query index. */
  readonly order: readonly number[];
}

/**
 * Steps 1–2 and the paste order of mask-wise merging (the part that does not depend on the class
 * thresholds, so several threshold settings can share it). `classLogits` [N, K + 1] (void last),
 * `maskLogits` [N, P] row-major.
 */
export const prepareMerge = (
  classLogits: ArrayLike<number>,
  maskLogits: ArrayLike<number>,
  { queries, classes, pixels }: { queries: number; classes: number; pixels: number },
  maskThreshold = MERGE_DEFAULTS.maskThreshold,
): PreparedMerge => {
  const n = queries, k1 = classes + 1, p = pixels;
  if (classLogits.length !== n * k1 || maskLogits.length !== n * p) {
    throw new RangeError(
      `mergePanoptic: expected ${n}×${k1} class logits and ${n}×${p} mask logits, ` +
        `got ${classLogits.length} and ${maskLogits.length}`,
    );
  }
  // 1. Class and confidence per query.
  const category = new Int32Array(n);
  const confidence = new Float64Array(n);
  for (let q = 0; q < n; q++) {
    let top = -Infinity;
    for (let c = 0; c < k1; c++) top = Math.max(top, classLogits[q * k1 + c]);
    let total = 0;
    for (let c = 0; c < k1; c++) total += Math.exp(classLogits[q * k1 + c] - top);
    let best = 0;
    for (let c = 1; c < classes; c++) if (classLogits[q * k1 + c] > classLogits[q * k1 + best]) best = c;
    category[q] = best;
    confidence[q] = Math.exp(classLogits[q * k1 + best] - top) / total;
  }
  // 2. Mask probabilities (softmax over queries per pixel), binary masks and their mean probability.
  const probs = new Float64Array(n * p);
  for (let i = 0; i < p; i++) {
    let top = -Infinity;
    for (let q = 0; q < n; q++) top = Math.max(top, maskLogits[q * p + i]);
    let total = 0;
    for (let q = 0; q < n; q++) total += probs[q * p + i] = Math.exp(maskLogits[q * p + i] - top);
    for (let q = 0; q < n; q++) probs[q * p + i] /= total;
  }
  const area = new Int32Array(n);
  const score = new Float64Array(n);
  for (let q = 0; q < n; q++) {
    let sum = 0;
    for (let i = 0; i < p; i++) {
      if (probs[q * p + i] > maskThreshold) {
        area[q]++;
        sum += probs[q * p + i];
      }
    }
    score[q] = area[q] > 0 ? confidence[q] * sum / area[q] : 0;
  }
  const order = Array.from({ length: n }, (_, q) => q).sort((a, b) => score[b] - score[a] || a - b);
  return { queries: n, pixels: p, maskThreshold, category, confidence, probs, area, order };
};

/** Steps 3–4: pastes the prepared queries under the class, overlap and area thresholds of `options`. */
export const pasteSegments = (
  prepared: PreparedMerge,
  isThing: readonly boolean[],
  options: Omit<MergeOptions, "maskThreshold"> = {},
): PanopticMap => {
  const opt = { ...MERGE_DEFAULTS, ...options };
  const { pixels: p, probs, area, category, confidence, maskThreshold } = prepared;
  const ids = new Int32Array(p);
  const segments: { id: number; category: number; isThing: boolean; score: number; area: number }[] = [];
  const stuffSegment = new Map<number, number>(); // class → index in segments
  for (const q of prepared.order) {
    const c = category[q];
    const thing = isThing[c];
    if (area[q] === 0 || confidence[q] < (thing ? opt.thingThreshold : opt.stuffThreshold)) continue;
    let free = 0;
    for (let i = 0; i < p; i++) if (probs[q * p + i] > maskThreshold && ids[i] === 0) free++;
    if (free <= opt.overlapThreshold * area[q] || free < opt.minArea) continue;
    let index = thing ? undefined : stuffSegment.get(c);
    if (index === undefined) {
      index = segments.push({
        id: segments.length + 1,
        category: c,
        isThing: thing,
        score: confidence[q],
        area: 0,
      }) -
        1;
      if (!thing) stuffSegment.set(c, index);
    }
    const segment = segments[index];
    for (let i = 0; i < p; i++) {
      if (probs[q * p + i] > maskThreshold && ids[i] === 0) ids[i] = segment.id;
    }
    segment.area += free;
  }
  return { ids, segments };
};

/**
 * Merges one image. `classLogits` [N, K + 1] (void last), `maskLogits` [N, P] row-major; `isThing[c]`
 * for the K classes.
 */
export const mergePanoptic = (
  classLogits: ArrayLike<number>,
  maskLogits: ArrayLike<number>,
  { queries, classes, pixels }: { queries: number; classes: number; pixels: number },
  isThing: readonly boolean[],
  options: MergeOptions = {},
): PanopticMap => {
  if (
    classLogits.length !== queries * (classes + 1) || maskLogits.length !== queries * pixels ||
    isThing.length !== classes
  ) {
    throw new RangeError(
      `mergePanoptic: expected ${queries}×${
        classes + 1
      } class logits, ${queries}×${pixels} mask logits and ` +
        `${classes} isThing flags, got ${classLogits.length}, ${maskLogits.length} and ${isThing.length}`,
    );
  }
  const { maskThreshold, ...rest } = { ...MERGE_DEFAULTS, ...options };
  return pasteSegments(
    prepareMerge(classLogits, maskLogits, { queries, classes, pixels }, maskThreshold),
    isThing,
    rest,
  );
};
