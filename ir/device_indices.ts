/**
 * ArgMax and TopK for the `webgpu` lowering, computed without int64 index outputs.
 *
 * ONNX Runtime's WebGPU kernels for ArgMax and TopK leave their int64 indices in host memory, so the node
 * that reads them (the Cast that narrows them to int32) runs on the CPU, with a device↔host copy inside
 * every step. These lowerings compute the same indices with float ops the device runs, and hand them over
 * as int32 → int64 casts made on the device. Float indices are exact: every index and rank is < 2^24.
 *
 * Ties follow ONNX (and ONNX Runtime's CPU kernels): ArgMax takes the first index of the maximum; TopK
 * orders equal values by increasing index, for largest and smallest alike. Values are compared with
 * Equal/Greater, so −0 equals +0 as on the CPU; NaN inputs are not supported (the CPU's order there is
 * unspecified).
 */
import { type DType, ONNX_DTYPE, type Shape } from "./dtype.ts";

/** The part of a lowering context these rules use (structurally `primitives.ts`'s `LowerContext`). */
export interface IndexEmitter {
  readonly out: readonly string[];
  readonly used: readonly boolean[];
  readonly node: (
    opType: string,
    inputs: readonly string[],
    outputs: readonly string[],
    attrs?: Record<string, { readonly int: number }>,
  ) => void;
  readonly fresh: (hint: string) => string;
  readonly constant: (values: ArrayLike<number>, dtype: DType, shape: Shape) => string;
  readonly int64: (values: readonly number[], shape?: Shape) => string;
  readonly scalar: (value: number, dtype: DType) => string;
}

/**
 * The largest pairwise comparison tensor (elements) TopK's rank lowering builds; a bigger TopK keeps
 * ONNX's own node (and its index Cast on the CPU). 2^24 float32 values are 64 MiB.
 */
export const RANK_TOPK_LIMIT = 2 ** 24;

/** 0..n−1 as float32, laid along the first of `rank` axes (the rest of size 1, for broadcasting). */
const iota = (e: IndexEmitter, n: number, rank: number): string =>
  e.constant(Array.from({ length: n }, (_, i) => i), "float32", [n, ...Array(rank - 1).fill(1)]);

/** Float32 indices → int32 (`int32`), and → int64 (`int64`, when given) — both casts on the device. */
const toIndices = (e: IndexEmitter, float: string, int32: string, int64?: string) => {
  e.node("Cast", [float], [int32], { to: { int: ONNX_DTYPE.int32 } });
  if (int64 !== undefined) e.node("Cast", [int32], [int64], { to: { int: ONNX_DTYPE.int64 } });
};

/**
 * ArgMax of float32 `x` over `axis` (normalized) into `e.out[0]` (int64): the least index i with
 * x_i = max x, as ReduceMin over i of (x_i = max ? i : n − 1).
 */
export const argMaxOnDevice = (
  e: IndexEmitter,
  x: string,
  shape: Shape,
  axis: number,
  keepDims: boolean,
): void => {
  const n = shape[axis], axes = e.int64([axis]);
  const max = e.fresh("max"), hit = e.fresh("hit"), candidate = e.fresh("candidate");
  const index = e.fresh("index"), int32 = e.fresh("int32");
  e.node("ReduceMax", [x, axes], [max], { keepdims: { int: 1 } });
  e.node("Equal", [x, max], [hit]);
  e.node("Where", [hit, iota(e, n, shape.length - axis), e.scalar(n - 1, "float32")], [candidate]);
  e.node("ReduceMin", [candidate, axes], [index], { keepdims: { int: keepDims ? 1 : 0 } });
  toIndices(e, index, int32, e.out[0]);
};

/**
 * TopK (sorted) of float32 `x` over `axis` (normalized) into `e.out` (values, int64 indices), by ranks:
 * rank_i = Σ_j [x_j beats x_i] + [x_j = x_i ∧ j < i] (a permutation of 0..n−1), then the index of rank
 * r = Σ_i i·[rank_i = r] and the values gathered by those indices. O(n²) per row: for n up to a few
 * hundred (class scores), see `RANK_TOPK_LIMIT`.
 */
export const topKOnDevice = (
  e: IndexEmitter,
  x: string,
  shape: Shape,
  axis: number,
  k: number,
  largest: boolean,
): void => {
  const n = shape[axis], rank = shape.length;
  // i along `axis`, j along `axis + 1`: [..., n_i, n_j, ...].
  const xi = e.fresh("xi"), xj = e.fresh("xj"), beats = e.fresh("beats"), tie = e.fresh("tie");
  e.node("Unsqueeze", [x, e.int64([axis + 1])], [xi]);
  e.node("Unsqueeze", [x, e.int64([axis])], [xj]);
  e.node(largest ? "Greater" : "Less", [xj, xi], [beats]);
  e.node("Equal", [xj, xi], [tie]);
  const earlier = Array.from({ length: n * n }, (_, p) => (p % n < Math.floor(p / n) ? 1 : 0)); // [i, j]: j < i
  const beatsFloat = e.fresh("beatsFloat"), before = e.fresh("before"), ranks = e.fresh("ranks");
  e.node("Cast", [beats], [beatsFloat], { to: { int: ONNX_DTYPE.float32 } });
  const earlierName = e.constant(earlier, "float32", [n, n, ...Array(rank - axis - 1).fill(1)]);
  e.node("Where", [tie, earlierName, beatsFloat], [before]);
  e.node("ReduceSum", [before, e.int64([axis + 1])], [ranks], { keepdims: { int: 1 } }); // [..., n_i, 1, ...]
  // One-hot ranks [..., n_i, k_r, ...], then Σ_i i·[rank_i = r].
  const isRank = e.fresh("isRank"), positions = e.fresh("positions"), index = e.fresh("index");
  e.node("Equal", [ranks, iota(e, k, rank - axis)], [isRank]);
  e.node("Where", [isRank, iota(e, n, rank + 1 - axis), e.scalar(0, "float32")], [positions]);
  e.node("ReduceSum", [positions, e.int64([axis])], [index], { keepdims: { int: 0 } });
  const [values, indices] = e.out;
  const int32 = e.fresh("int32");
  toIndices(e, index, int32, e.used[1] ? indices : undefined);
  if (e.used[0]) e.node("GatherElements", [x, int32], [values], { axis: { int: axis } });
};
