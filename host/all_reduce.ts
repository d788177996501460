/**
 * The host stages of a data-parallel training plan (interpret/data_parallel.ts): between the graph
 * stages, the ranks sum what they computed on their shards of the global batch. They are functions of
 * named arrays and a `Collective` (ir/collective.ts); they never load MPI themselves.
 *
 * - `countReduceStage`: the local counts of the loss sites that divide by a data-dependent count
 *   (`count:<site>`) → each rank's share of the global count, `countShare:<site>` = max(Σ_r C_r, 1) / N
 *   (ir/count_normalized.ts says why that makes the gradient exact).
 * - `gradientReduceStage`: the gradients `grad:<p>` and the loss terms → their means over the ranks,
 *   `meanGrad:<p>` and the loss names, plus the sum of a stop flag (a rank that was asked to stop
 *   stops every rank at the same step).
 *
 * Gradients travel in buckets: each bucket is packed into one contiguous float32 buffer, all-reduced in
 * place, and its parameters' mean gradients are views into it (valid until the stage's next run; the
 * update stage reads them first). One call per bucket instead of one per parameter: BENCHMARKS.md
 * ("Data-parallel training") has what each costs.
 */
import { Effect } from "effect";
import type { Collective } from "../ir/collective.ts";
import { COUNT, COUNT_SHARE } from "../ir/count_normalized.ts";
import { type HostStage, RuntimeError } from "../ir/plan.ts";
import { onHost, type Value, value } from "../ir/value.ts";

/** The feed (float32 [1], 1 = stop) whose sum over the ranks `gradientReduceStage` outputs under this name. */
export const STOP_REQUESTED = "stopRequested";

/** What the all-reduces of a plan took, summed over its runs (reset by whoever reads it). */
export interface ReduceStats {
  /** Collective calls, the seconds spent in them, and the float32 bytes they reduced. */
  calls: number;
  seconds: number;
  bytes: number;
  /** Seconds in the stages as a whole: the calls plus packing, averaging and unpacking. */
  stageSeconds: number;
}

export const reduceStats = (): ReduceStats => ({ calls: 0, seconds: 0, bytes: 0, stageSeconds: 0 });

/** Runs a stage's body, adding its wall time to `stats.stageSeconds`. */
const stage = <A>(stats: ReduceStats, body: Effect.Effect<A, RuntimeError>) =>
  Effect.suspend(() => {
    const t = performance.now();
    return Effect.tap(body, () => Effect.sync(() => (stats.stageSeconds += (performance.now() - t) / 1000)));
  });

/** A host float32 array from `env`, or a one-line reason it is not one. */
const floats = (env: ReadonlyMap<string, Value>, name: string): Float32Array | string => {
  const v = env.get(name);
  if (!v) return `missing input "${name}"`;
  if (v.type !== "float32") return `"${name}" is ${v.type}, expected float32`;
  if (!onHost(v)) return `"${name}" is a ${v.location} value; all-reduces read host arrays`;
  return v.data as Float32Array;
};

const timed = <A>(stats: ReduceStats, bytes: number, calls: number, f: Effect.Effect<A, RuntimeError>) =>
  Effect.suspend(() => {
    const t = performance.now();
    return Effect.tap(f, () =>
      Effect.sync(() => {
        stats.calls += calls;
        stats.bytes += bytes;
        stats.seconds += (performance.now() - t) / 1000;
      }));
  });

/** The stage that turns each site's local `count:<site>` into `countShare:<site>` (see the module doc). */
export const countReduceStage = (
  sites: readonly string[],
  collective: Collective,
  stats: ReduceStats = reduceStats(),
): HostStage => {
  const buffer = new Float32Array(sites.length);
  return {
    _tag: "HostStage",
    name: "all-reduce counts",
    outputs: sites.map((s) => `${COUNT_SHARE}${s}`),
    run: (env) =>
      stage(
        stats,
        Effect.gen(function* () {
          for (const [i, s] of sites.entries()) {
            const count = floats(env, `${COUNT}${s}`);
            if (typeof count === "string") {
              return yield* new RuntimeError({ stage: "all-reduce counts", reason: count });
            }
            buffer[i] = count[0];
          }
          yield* timed(stats, buffer.byteLength, 1, collective.allReduceSum(buffer));
          return Object.fromEntries(
            sites.map((s, i) => [
              `${COUNT_SHARE}${s}`,
              value("float32", Float32Array.of(Math.max(buffer[i], 1) / collective.size), []),
            ]),
          );
        }),
      ),
  };
};

/** One parameter's gradient: the gradient part's output, the update part's input, and its size. */
export interface GradientName {
  readonly output: string;
  readonly input: string;
  readonly size: number;
}

/**
 * Parameters grouped into buckets of at most `bucketBytes` (a parameter larger than that is a bucket of
 * its own), in order. `Infinity`: one bucket; 0: one per parameter.
 */
export const buckets = (gradients: readonly GradientName[], bucketBytes: number): GradientName[][] => {
  const out: GradientName[][] = [];
  let bytes = 0;
  for (const g of gradients) {
    const size = 4 * g.size;
    if (out.length === 0 || bytes + size > bucketBytes) {
      out.push([]);
      bytes = 0;
    }
    out.at(-1)!.push(g);
    bytes += size;
  }
  return out;
};

/**
 * The stage that averages the gradients and the loss terms over the ranks (see the module doc). Losses
 * and the stop flag ride in the first bucket. `bucketBytes` (default: one bucket) bounds a bucket's size.
 */
export const gradientReduceStage = (
  { gradients, losses, collective, bucketBytes = Infinity, stats = reduceStats() }: {
    readonly gradients: readonly GradientName[];
    readonly losses: readonly string[];
    readonly collective: Collective;
    readonly bucketBytes?: number;
    readonly stats?: ReduceStats;
  },
): HostStage => {
  const groups = buckets(gradients, bucketBytes);
  if (groups.length === 0) groups.push([]);
  // The first bucket starts with the loss terms and the stop flag.
  const extra = losses.length + 1;
  const buffers = groups.map((group, i) =>
    new Float32Array((i === 0 ? extra : 0) + group.reduce((a, g) => a + g.size, 0))
  );
  const n = collective.size;
  return {
    _tag: "HostStage",
    name: "all-reduce gradients",
    outputs: [...gradients.map((g) => g.input), ...losses, STOP_REQUESTED],
    run: (env) =>
      stage(
        stats,
        Effect.gen(function* () {
          const fail = (reason: string) => new RuntimeError({ stage: "all-reduce gradients", reason });
          const out: Record<string, Value> = {};
          const first = buffers[0];
          for (const [i, name] of losses.entries()) {
            const loss = floats(env, name);
            if (typeof loss === "string") return yield* fail(loss);
            first[i] = loss[0];
          }
          const stop = env.get(STOP_REQUESTED);
          first[losses.length] = stop && onHost(stop) ? (stop.data as Float32Array)[0] : 0;
          for (const [b, group] of groups.entries()) {
            const buffer = buffers[b];
            let offset = b === 0 ? extra : 0;
            for (const g of group) {
              const grad = floats(env, g.output);
              if (typeof grad === "string") return yield* fail(grad);
              if (grad.length !== g.size) {
                return yield* fail(`"${g.output}" has ${grad.length} values, not ${g.size}`);
              }
              buffer.set(grad, offset);
              offset += g.size;
            }
            yield* timed(stats, buffer.byteLength, 1, collective.allReduceSum(buffer));
            if (n > 1) { for (let i = 0; i < buffer.length; i++) buffer[i] /= n; }
            offset = b === 0 ? extra : 0;
            for (const g of group) {
              const shape = env.get(g.output)!.dims;
              out[g.input] = value("float32", buffer.subarray(offset, offset + g.size), shape);
              offset += g.size;
            }
          }
          for (const [i, name] of losses.entries()) {
            out[name] = value("float32", Float32Array.of(first[i]), []);
          }
          out[STOP_REQUESTED] = value("float32", Float32Array.of(first[losses.length] * n), [1]);
          return out;
        }),
      ),
  };
};
