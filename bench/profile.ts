/**
 * Where our step's time goes, from ONNX Runtime's own profile (a Chrome trace): time inside
 * `session.run` ("model_run"), the part of it spent in kernels, and the part of that in MatMul kernels.
 * The rest of a step's wall time is spent outside ORT's run: binding the feeds, copying every output
 * into a fresh JS array, and our runtime's bookkeeping. (Profiling costs a little time per node, so the
 * timed steps are measured without it.)
 */
import { Effect } from "effect";
import { execute, type Plan, type RuntimeOptions, type Value } from "../mod.ts";
import { ownMinorFaults } from "./load.ts";
import { type Repeats, timeRuns } from "./measure.ts";
import { summarize } from "../figures/stats.ts";

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
  /** Wall time of the whole step (`Executor.run`), and its part outside ORT's run, step by step. */
  readonly wallMs: number;
  readonly outsideMs: number;
  /** Minor page faults per profiled step (fresh memory mapped in). */
  readonly faultsPerStep: number;
  /** Kernel time by part of the model (from the scopes in the ONNX node names). */
  readonly components: readonly ComponentTime[];
}

/** Medians over profiled one-image inference runs of the exported model (ORT's own profile). */
export interface InferenceProfile {
  readonly runMs: number;
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

/** The trace ONNX Runtime wrote into `dir` when the profiled session was released. */
export const readTrace = async (dir: string): Promise<TraceEvent[]> => {
  const [file] = [...Deno.readDirSync(dir)].filter((f) => f.name.endsWith(".json"));
  if (!file) throw new Error(`ONNX Runtime wrote no profile into ${dir}`);
  return JSON.parse(await Deno.readTextFile(`${dir}/${file.name}`));
};

/** Medians over the runs of a trace: time in the run, in its kernels, in its MatMul kernels. */
export const medianRunTimes = (runs: ReturnType<typeof runsOfTrace>): InferenceProfile => {
  const median = (xs: number[]) => summarize(xs).median;
  return {
    runMs: median(runs.map((r) => r.runMs)),
    kernelMs: median(runs.map((r) => r.kernelMs)),
    matmulMs: median(runs.map((r) => r.matmulMs)),
  };
};

/**
 * Runs `p` with ORT's profiler on and returns the medians of its profiled runs. `options` go to the
 * runtime, threads and graph optimization aside.
 */
export const profileSteps = async (
  p: Plan,
  feeds: Readonly<Record<string, Value>>,
  threads: number,
  repeats: Repeats,
  options: RuntimeOptions = {},
): Promise<StepProfile> => {
  const dir = await Deno.makeTempDir({ prefix: "kappa-profile-" });
  try {
    const { wall, faults } = await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const ex = yield* execute(p, {
        ...options,
        threads,
        optimization: "all",
        profilePrefix: `${dir}/step`,
      });
      yield* timeRuns(ex.run(feeds), { warmup: repeats.warmup, runs: 0 });
      const before = ownMinorFaults();
      const { ms } = yield* timeRuns(ex.run(feeds), { warmup: 0, runs: repeats.runs });
      return { wall: ms, faults: (ownMinorFaults() - before) / repeats.runs };
    }))); // ORT writes the trace when the session is released, at the end of the scope
    const events = await readTrace(dir);
    const runs = runsOfTrace(events, repeats.runs);
    const median = (xs: number[]) => summarize(xs).median;
    return {
      ...medianRunTimes(runs),
      wallMs: median(wall),
      outsideMs: median(runs.map((r, i) => wall[i] - r.runMs)),
      faultsPerStep: faults,
      components: componentsOfTrace(events, repeats.runs),
    };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
};

/** The part of the model a node belongs to, from the scope its ONNX name carries (onnx/lower.ts). */
export const componentOf = (nodeName: string): { component: string; backward: boolean } => {
  const slash = nodeName.indexOf("/");
  if (slash < 0) return { component: "inserted by ONNX Runtime", backward: false };
  const scope = nodeName.slice(0, slash);
  const backward = scope.startsWith("backward:");
  const path = backward ? scope.slice("backward:".length) : scope;
  const component = /^model\.backbone\b/.test(path)
    ? "backbone"
    : /^model\.proj\b/.test(path)
    ? "neck (proj)"
    : /^model\.xi\b/.test(path)
    ? "ξ"
    : /^model\.(psi|temperature)\b/.test(path)
    ? "ψ + τ"
    : /^loss\b/.test(path)
    ? "loss"
    : /^optimizer\b/.test(path)
    ? "optimizer"
    : "other (selection, targets, glue)";
  return { component, backward };
};

/** Kernel milliseconds per run by component, forward and backward (optimizer nodes count as backward). */
export interface ComponentTime {
  readonly component: string;
  readonly forwardMs: number;
  readonly backwardMs: number;
}

/** Mean kernel time per run of each component over the last `runs` runs of a trace. */
export const componentsOfTrace = (events: readonly TraceEvent[], runs: number): ComponentTime[] => {
  const modelRuns = events.filter((e) => e.cat === "Session" && e.name === "model_run").slice(-runs);
  if (modelRuns.length === 0) return [];
  const from = modelRuns[0].ts;
  const sums = new Map<string, { forwardMs: number; backwardMs: number }>();
  for (const k of events) {
    if (k.cat !== "Node" || !k.name.endsWith("_kernel_time") || k.ts < from) continue;
    const { component, backward } = componentOf(k.name);
    const s = sums.get(component) ?? { forwardMs: 0, backwardMs: 0 };
    const ms = (k.dur ?? 0) / 1000 / modelRuns.length;
    if (backward) s.backwardMs += ms;
    else s.forwardMs += ms;
    sums.set(component, s);
  }
  return [...sums].map(([component, s]) => ({ component, ...s }))
    .sort((a, b) => b.forwardMs + b.backwardMs - (a.forwardMs + a.backwardMs));
};
