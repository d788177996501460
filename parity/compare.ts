/**
 * Comparing kappa's values with the official ones, and the rows of the parity table.
 *
 * A float comparison is relative to the magnitude of the official tensor: for each tensor,
 * rel = max_i |kappa_i − official_i| / max_i |official_i| (the largest error as a share of the largest
 * value; per-element ratios are meaningless for entries that are ~0, e.g. a gradient of 1e-12). A group
 * of tensors (all gradients of a module) reports its worst tensor. A tensor that is 0 in exact arithmetic
 * (e.g. the gradient of an attention key bias: softmax over keys ignores a shift shared by every key) is
 * measured against the largest official value of its row instead (`Pair.zero`); any other official
 * tensor that is exactly 0 must be 0 in kappa too (rel = ∞ otherwise). Integer results (selected classes, rank targets,
 * assignments, panoptic maps) must be equal: their row counts the differing entries.
 */

export type MethodName = "RankSeg" | "kMaX-DeepLab" | "LarvSeg";

/**
 * Tolerances on rel. kappa runs in float32 (ONNX Runtime has no float64 Erf / Gelu kernels), so the
 * bound is float32 rounding: about ten times the largest difference that PyTorch's own float32 run shows
 * against its float64 run on the same RankSeg cases (2.3e-6 for values, 3.5e-6 for gradients, both
 * through the rank LayerNorm over κ = 5 close cosines, which magnifies rounding).
 */
export const TOLERANCE = {
  /** Forward values and losses. */
  values: 2e-5,
  /** Gradients (the backward pass goes through the same normalizations twice). */
  gradients: 5e-5,
} as const;

/** One row of the parity table. */
export interface Check {
  readonly method: MethodName;
  readonly component: string;
  /** What was compared: "scores (forward)", "gradients (18 parameters + input)", "loss", … */
  readonly compared: string;
  readonly kind: "close" | "exact";
  /** Largest |kappa − official| (close) or the number of differing entries (exact). */
  readonly maxAbs: number;
  /** Largest rel (close); for exact rows the share of differing entries. */
  readonly maxRel: number;
  readonly tolerance: number;
  /** For RankSeg: PyTorch's own float32 run against its float64 run, rel (the noise floor). */
  readonly torchFloat32?: number;
  readonly passed: boolean;
  /** Where the worst difference is, or a note. */
  readonly detail: string;
}

export interface Difference {
  readonly maxAbs: number;
  readonly rel: number;
  /** Index of the worst element. */
  readonly at: number;
}

/** max |b|. */
export const magnitude = (b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(b[i]));
  return m;
};

/** max |a − b| and its share of max |b| (or of `scaleOverride`). */
export const difference = (
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  scaleOverride?: number,
): Difference => {
  if (a.length !== b.length) throw new Error(`parity: comparing ${a.length} values with ${b.length}`);
  let maxAbs = 0, at = 0;
  for (let i = 0; i < a.length && maxAbs !== Infinity; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) [maxAbs, at] = [Infinity, i]; // a NaN is the worst difference there is
    else if (d > maxAbs) [maxAbs, at] = [d, i];
  }
  const scale = scaleOverride ?? magnitude(b);
  const rel = maxAbs === 0 ? 0 : scale === 0 ? Infinity : maxAbs / scale;
  return { maxAbs, rel, at };
};

/** A named pair of tensors to compare (kappa, official) and, optionally, PyTorch's float32 values. */
export interface Pair {
  readonly name: string;
  readonly kappa: ArrayLike<number>;
  readonly official: ArrayLike<number>;
  readonly torchFloat32?: ArrayLike<number>;
  /** Why this tensor is 0 in exact arithmetic: it is then measured against its row's largest value. */
  readonly zero?: string;
}

/** A float row over one or more tensor pairs: the worst tensor decides. */
export const closeRow = (
  method: MethodName,
  component: string,
  compared: string,
  pairs: readonly Pair[],
  tolerance: number,
): Check => {
  let worst = { name: "", d: { maxAbs: 0, rel: 0, at: 0 } };
  let maxAbs = 0, floor: number | undefined;
  const rowScale = Math.max(...pairs.map((p) => magnitude(p.official)));
  for (const p of pairs) {
    const scale = p.zero ? rowScale : undefined;
    const d = difference(p.kappa, p.official, scale);
    maxAbs = Math.max(maxAbs, d.maxAbs);
    if (d.rel > worst.d.rel || worst.name === "") worst = { name: p.name, d };
    if (p.torchFloat32) floor = Math.max(floor ?? 0, difference(p.torchFloat32, p.official, scale).rel);
  }
  return {
    method,
    component,
    compared,
    kind: "close",
    maxAbs,
    maxRel: worst.d.rel,
    tolerance,
    ...(floor !== undefined ? { torchFloat32: floor } : {}),
    passed: worst.d.rel <= tolerance,
    detail: pairs.length > 1 ? `worst: ${worst.name}` : "",
  };
};

/** An integer row: every entry must be equal. */
export const exactRow = (
  method: MethodName,
  component: string,
  compared: string,
  kappa: ArrayLike<number>,
  official: ArrayLike<number>,
): Check => {
  let differing = 0, first = -1;
  const n = Math.max(kappa.length, official.length);
  for (let i = 0; i < n; i++) {
    if (kappa[i] !== official[i]) {
      differing++;
      if (first < 0) first = i;
    }
  }
  return {
    method,
    component,
    compared,
    kind: "exact",
    maxAbs: differing,
    maxRel: n === 0 ? 0 : differing / n,
    tolerance: 0,
    passed: differing === 0,
    detail: differing === 0
      ? `${n} entries equal`
      : `${differing} of ${n} differ; first at ${first}: kappa ${kappa[first]}, official ${official[first]}`,
  };
};

/** A row for a hand-computed case: kappa against numbers written from the equations (float64). */
export const handRow = (
  component: string,
  compared: string,
  kappa: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number = TOLERANCE.values,
): Check => ({
  ...closeRow("LarvSeg", component, compared, [{ name: compared, kappa, official: expected }], tolerance),
});
