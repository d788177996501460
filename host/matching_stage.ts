/**
 * Hungarian matching as a runtime host stage: between a graph that computes the matching costs and a
 * graph that computes the losses of the matched pairs.
 *
 * What crosses the boundary is a few named tensors: in, the cost of every (query, target) pair,
 * f32[b, N, M], and the number of valid targets per image, int[b] (targets are padded to M, and only the
 * first `count` of each image take part); out, per query the index of its target or −1, int64[b, N], and
 * the same as a 0/1 matrix, f32[b, N, M], which the loss graph uses with a matmul (matched target of each
 * query = matrix · targets).
 */
import { Effect } from "effect";
import { AssignmentError, linearSumAssignment } from "./hungarian.ts";
import { type HostStage, RuntimeError } from "../ir/plan.ts";
import { type Value, value } from "../ir/value.ts";

export interface MatchingStageNames {
  /** The stage's name in errors. */
  readonly name?: string;
  /** f32[b, N, M]: cost of query n taking target m (lower is better). */
  readonly costs: string;
  /** int32 or int64 [b]: how many of the M targets of each image are real. */
  readonly counts: string;
  /** int64[b, N]: the target of each query, −1 for an unmatched query. */
  readonly index: string;
  /** f32[b, N, M]: 1 where query n is matched to target m. */
  readonly matrix: string;
}

/** The per-image matching of a cost tensor; pure, so tests and the stage share it. */
export const matchBatch = (
  costs: Float32Array | Float64Array,
  counts: ArrayLike<number | bigint>,
  [b, n, m]: readonly [number, number, number],
): { index: BigInt64Array; matrix: Float32Array } => {
  const index = new BigInt64Array(b * n).fill(-1n);
  const matrix = new Float32Array(b * n * m);
  const sub = new Float64Array(n * m);
  for (let image = 0; image < b; image++) {
    const count = Number(counts[image]);
    if (!Number.isInteger(count) || count < 0 || count > m) {
      throw new AssignmentError({ message: `image ${image}: ${count} valid targets, expected 0..${m}` });
    }
    // The n × count block of valid targets, row-major.
    for (let q = 0; q < n; q++) {
      for (let t = 0; t < count; t++) sub[q * count + t] = costs[(image * n + q) * m + t];
    }
    const { colOfRow } = linearSumAssignment(sub.subarray(0, n * count), n, count);
    for (let q = 0; q < n; q++) {
      const t = colOfRow[q];
      if (t < 0) continue;
      index[image * n + q] = BigInt(t);
      matrix[(image * n + q) * m + t] = 1;
    }
  }
  return { index, matrix };
};

/** A host stage that matches queries to targets by minimum total cost, image by image. */
export const matchingStage = (names: MatchingStageNames): HostStage => {
  const stage = names.name ?? "matching";
  const fail = (reason: string) => Effect.fail(new RuntimeError({ stage, reason }));
  return {
    _tag: "HostStage",
    name: stage,
    outputs: [names.index, names.matrix],
    run: (env: ReadonlyMap<string, Value>) => {
      const costs = env.get(names.costs);
      const counts = env.get(names.counts);
      if (!costs) return fail(`missing input "${names.costs}"`);
      if (!counts) return fail(`missing input "${names.counts}"`);
      if (costs.type !== "float32" || costs.dims.length !== 3) {
        return fail(`input "${names.costs}" is ${costs.type}[${costs.dims}], expected float32[b, N, M]`);
      }
      const [b, n, m] = costs.dims as [number, number, number];
      if (
        (counts.type !== "int64" && counts.type !== "int32") || counts.dims.length !== 1 ||
        counts.dims[0] !== b
      ) {
        return fail(`input "${names.counts}" is ${counts.type}[${counts.dims}], expected int64[${b}]`);
      }
      return Effect.try({
        try: () =>
          matchBatch(costs.data as Float32Array, counts.data as ArrayLike<number | bigint>, [b, n, m]),
        catch: (e) =>
          new RuntimeError({ stage, reason: e instanceof AssignmentError ? e.message : String(e) }),
      }).pipe(Effect.map(({ index, matrix }) => ({
        [names.index]: value("int64", index, [b, n]),
        [names.matrix]: value("float32", matrix, [b, n, m]),
      })));
    },
  };
};
