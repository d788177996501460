/**
 * Timing through our runtime, and the MatMul peak: the GFLOP/s one ONNX Runtime MatMul reaches on this
 * CPU, the ceiling that other benchmarks divide their model FLOP/s by.
 */
import { Effect } from "effect";
import { execute, Graph, graphStage, ops as o, plan, type Value, value } from "../mod.ts";
import { random } from "../profiling.ts";
import { gflops, summarize, type Summary } from "../figures/stats.ts";

export interface Repeats {
  /** Runs before timing starts (session warm-up, arena growth, caches). */
  readonly warmup: number;
  readonly runs: number;
}

/**
 * Runs `once` `warmup + runs` times back to back; returns the wall time of each timed run in
 * milliseconds, and the result of every run (warm-up runs first).
 */
export const timeRuns = <A, E, R>(
  once: Effect.Effect<A, E, R>,
  { warmup, runs }: Repeats,
): Effect.Effect<{ ms: number[]; results: A[] }, E, R> =>
  Effect.gen(function* () {
    const ms: number[] = [];
    const results: A[] = [];
    for (let i = 0; i < warmup + runs; i++) {
      const t0 = performance.now();
      results.push(yield* once);
      if (i >= warmup) ms.push(performance.now() - t0);
    }
    return { ms, results };
  });

/** Opens `g` in its own scope at `threads` intra-op threads and times `ex.run(feeds)`. */
export const timeGraph = (
  g: Graph,
  feeds: Readonly<Record<string, Value>>,
  threads: number,
  repeats: Repeats,
): Promise<number[]> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function* () {
    const ex = yield* execute(plan(g.name, g, [graphStage(g)]), { threads, optimization: "all" });
    return (yield* timeRuns(ex.run(feeds), repeats)).ms;
  })));

const uniformMatrix = (n: number, seed: number): Value => {
  const rng = random(seed);
  return value("float32", Float32Array.from({ length: n * n }, () => rng.uniform() - 0.5), [n, n]);
};

export interface MatmulFigures {
  readonly n: number;
  readonly threads: number;
  /** One run of the n×n · n×n MatMul graph, output copy included. */
  readonly ms: Summary;
  /** One run of a graph that only produces an n×n output: call overhead plus the output copy. */
  readonly outputMs: Summary;
  /** 2n³ / (median ms − median output ms). */
  readonly gflops: number;
  /** 2n³ / median ms, the copy left in. */
  readonly rawGflops: number;
}

/**
 * GFLOP/s of one float32 n×n · n×n MatMul. ONNX Runtime copies every output into a fresh JS array, so
 * the time of a graph that returns an n×n output without computing it (Expand of a fed scalar) is
 * measured too and subtracted; at n ≥ 1024 it is a few percent of the MatMul.
 */
export const measureMatmul = async (
  n: number,
  threads: number,
  repeats: Repeats = { warmup: 3, runs: 15 },
): Promise<MatmulFigures> => {
  const mm = new Graph(`matmul${n}`);
  mm.output("c", o.matmul(o.input(mm, "a", [n, n]), o.input(mm, "b", [n, n])));
  const ms = summarize(
    await timeGraph(mm, { a: uniformMatrix(n, 1), b: uniformMatrix(n, 2) }, threads, repeats),
  );
  const fill = new Graph(`output${n}`);
  fill.output("c", o.expand(o.input(fill, "s", []), [n, n]));
  const outputMs = summarize(
    await timeGraph(fill, { s: value("float32", Float32Array.of(1), []) }, threads, repeats),
  );
  const flops = 2 * n ** 3;
  return {
    n,
    threads,
    ms,
    outputMs,
    gflops: gflops(flops, ms.median - outputMs.median),
    rawGflops: gflops(flops, ms.median),
  };
};

/** MatMul sizes for the peak: large enough that compute dominates the per-call costs. */
export const PEAK_SIZES = [1024, 2048] as const;

/** The CPU limit: the best MatMul GFLOP/s through ONNX Runtime at `threads` intra-op threads. */
export const matmulPeak = async (threads: number, sizes: readonly number[] = PEAK_SIZES): Promise<number> => {
  let best = 0;
  for (const n of sizes) best = Math.max(best, (await measureMatmul(n, threads)).gflops);
  return best;
};
