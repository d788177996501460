/**
 * Where our step's time goes, from ONNX Runtime's own profile (a Chrome trace): time inside
 * `session.run` ("model_run"), the part of it spent in kernels, and the part of that in MatMul kernels.
 * The rest of a step's wall time is spent outside ORT's run: binding the feeds, copying every output
 * into a fresh JS array, and our runtime's bookkeeping. (Profiling costs a little time per node, so the
 * timed steps are measured without it.)
 */
import { Effect } from "effect";
import { execute, type Plan, type Value } from "../plan/runtime.ts";
import { type Repeats, timeRuns } from "./measure.ts";
import { summarize } from "./stats.ts";

/** The fields of a trace event that we read. */
export interface TraceEvent {
  readonly cat?: string;
  readonly name: string;
  readonly ts: number;
  readonly dur?: number;
  readonly args?: { readonly op_name?: string };
}

/** Medians over the profiled runs, in milliseconds. */
export interface StepProfile {
  /** Inside ORT's `session.run`. */
  readonly runMs: number;
  /** Sum of the kernels of one run; MatMul kernels (MatMul, FusedMatMul, Gemm) among them. */
  readonly kernelMs: number;
  readonly matmulMs: number;
}

const MATMUL_OPS = new Set(["MatMul", "FusedMatMul", "Gemm"]);

/** Per run (the last `runs` "model_run" events): time in the run, in its kernels, in its MatMul kernels. */
export const runsOfTrace = (events: readonly TraceEvent[], runs: number) => {
  const modelRuns = events.filter((e) => e.cat === "Session" && e.name === "model_run").slice(-runs);
  const kernels = events.filter((e) => e.cat === "Node" && e.name.endsWith("_kernel_time"));
  return modelRuns.map((r) => {
    const inside = kernels.filter((k) => k.ts >= r.ts && k.ts < r.ts + (r.dur ?? 0));
    const ms = (ks: readonly TraceEvent[]) => ks.reduce((s, k) => s + (k.dur ?? 0), 0) / 1000;
    return {
      runMs: (r.dur ?? 0) / 1000,
      kernelMs: ms(inside),
      matmulMs: ms(inside.filter((k) => MATMUL_OPS.has(k.args?.op_name ?? ""))),
    };
  });
};

/** Runs `p` with ORT's profiler on and returns the medians of its profiled runs. */
export const profileSteps = async (
  p: Plan,
  feeds: Readonly<Record<string, Value>>,
  threads: number,
  repeats: Repeats,
): Promise<StepProfile> => {
  const dir = await Deno.makeTempDir({ prefix: "kappa-profile-" });
  try {
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(p, { threads, optimization: "all", profilePrefix: `${dir}/step` });
      yield* timeRuns(ex.run(feeds), repeats);
    }))); // ORT writes the trace when the session is released, at the end of the scope
    const [file] = [...Deno.readDirSync(dir)].filter((f) => f.name.endsWith(".json"));
    if (!file) throw new Error(`ONNX Runtime wrote no profile into ${dir}`);
    const runs = runsOfTrace(JSON.parse(await Deno.readTextFile(`${dir}/${file.name}`)), repeats.runs);
    const median = (xs: number[]) => summarize(xs).median;
    return {
      runMs: median(runs.map((r) => r.runMs)),
      kernelMs: median(runs.map((r) => r.kernelMs)),
      matmulMs: median(runs.map((r) => r.matmulMs)),
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
};
