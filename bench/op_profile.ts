/**
 * Where a step's kernel time goes by ONNX op type and by node, from ONNX Runtime's profile (a Chrome
 * trace), with the FLOPs of every MatMul and convolution node read from the shapes the trace records
 * (`input_type_shape` / `output_type_shape`), so their achieved GFLOP/s can be set against the MatMul
 * peak. Pure: the trace comes in as data (bench/profile_ops.ts runs the steps).
 *
 * A node's time is its **median over the profiled runs**: on a machine other processes share, a kernel
 * that lost its core for a scheduler slice shows up as one long run, which the median drops; the sum of
 * the medians is the step's kernel time as an unshared machine would see it, roughly. Shares of it are
 * robust to the background load; absolute milliseconds are not.
 *
 * With more than one intra-op thread, ORT records for each kernel how it used its thread pool
 * (`thread_scheduling_stats`: the block sizes it split the work into, empty when the kernel ran on the
 * calling thread alone). A node that never split its work is counted as **one-thread**: at T = 2 such
 * kernels leave the second core idle, which the step's 2-thread speed-up pays for.
 */
import type { TraceEvent } from "./profile.ts";
import { summarize } from "../figures/stats.ts";
import { fixed, formatMs, formatPercent as pct, table } from "../figures/markdown.ts";

/** A trace event of a node, with the shape arguments ORT records. */
export interface NodeEvent extends TraceEvent {
  readonly args?: {
    readonly op_name?: string;
    readonly input_type_shape?: TypeShapes;
    readonly output_type_shape?: TypeShapes;
    readonly thread_scheduling_stats?: { readonly main_thread?: { readonly block_size?: readonly number[] } };
  };
}

/** Whether a kernel event records a split of its work over the thread pool (undefined: not recorded). */
export const splitWork = (e: NodeEvent): boolean | undefined => {
  const blocks = e.args?.thread_scheduling_stats?.main_thread?.block_size;
  return blocks === undefined ? undefined : blocks.length > 0;
};

/** Which family of compute kernel a node is (for the GFLOP/s table). */
export type KernelClass = "matmul" | "conv" | "depthwise";

export const MATMUL_OPS = new Set(["MatMul", "FusedMatMul", "Gemm"]);
const CONV_OPS = new Set(["Conv", "FusedConv", "NchwcConv"]);

type TypeShapes = readonly Record<string, readonly number[]>[] | undefined;
const shapes = (s: TypeShapes): (readonly number[])[] => (s ?? []).map((t) => Object.values(t)[0] ?? []);
const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1);

/**
 * The shared (contracted) dimension of a matmul with operand shapes `a`, `b` and output `out`, whichever
 * operand is transposed (FusedMatMul / Gemm attributes are not in the trace): the dimension of `a` that is
 * not the output's rows and of `b` that is not its columns, where both agree.
 */
const contracted = (
  a: readonly number[],
  b: readonly number[],
  out: readonly number[],
): number | undefined => {
  const [m, n] = [out[out.length - 2] ?? 1, out[out.length - 1]];
  const a2 = a.length >= 2 ? [a[a.length - 2], a[a.length - 1]] : [1, a[0]];
  const b2 = b.length >= 2 ? [b[b.length - 2], b[b.length - 1]] : [b[0], 1];
  const fromA = [a2[0] === m ? a2[1] : undefined, a2[1] === m ? a2[0] : undefined];
  const fromB = [b2[1] === n ? b2[0] : undefined, b2[0] === n ? b2[1] : undefined];
  return fromA.find((k) => k !== undefined && fromB.includes(k));
};

/** FLOPs (2 per multiply-add) and kernel class of a MatMul or convolution node; undefined for others. */
export const nodeFlops = (
  op: string,
  inputs: readonly (readonly number[])[],
  outputs: readonly (readonly number[])[],
): { flops: number; kind: KernelClass } | undefined => {
  const [x, w] = inputs, [y] = outputs;
  if (!x || !w || !y) return undefined;
  if (MATMUL_OPS.has(op)) {
    const k = contracted(x, w, y);
    return k === undefined ? undefined : { flops: 2 * product(y) * k, kind: "matmul" };
  }
  // Conv: w [O, C/g, kh, kw]; each output element sums C/g · kh · kw products. Depthwise: C/g = 1.
  if (CONV_OPS.has(op) && w.length === 4) {
    return {
      flops: 2 * product(y) * product(w.slice(1)),
      kind: w[1] === 1 && x[1] > 1 ? "depthwise" : "conv",
    };
  }
  // ConvTranspose: w [C, O/g, kh, kw]; each input element meets O/g · kh · kw outputs.
  if (op === "ConvTranspose" && w.length === 4) {
    return {
      flops: 2 * product(x) * product(w.slice(1)),
      kind: w[1] === 1 && x[1] > 1 ? "depthwise" : "conv",
    };
  }
  return undefined;
};

export interface NodeTime {
  readonly name: string;
  readonly op: string;
  /** Median over the profiled runs. */
  readonly ms: number;
  readonly flops?: number;
  readonly kind?: KernelClass;
  /** Whether the kernel split its work over the thread pool in any profiled run (undefined: T = 1). */
  readonly parallel?: boolean;
}

export interface OpTime {
  readonly op: string;
  /** Nodes of this type per run. */
  readonly nodes: number;
  readonly ms: number;
  /** Of `ms`, the time of nodes that never split their work over the thread pool (T ≥ 2 only). */
  readonly oneThreadMs?: number;
}

export interface ClassTime {
  readonly kind: KernelClass;
  /** Nodes of the backward pass (IR scope `backward:…`): gradients of inputs and weights. */
  readonly backward: boolean;
  readonly nodes: number;
  readonly ms: number;
  readonly flops: number;
}

export interface OpProfile {
  readonly runs: number;
  /** Median of the runs' `model_run` durations. */
  readonly runMs: number;
  /** Sum of the nodes' median times. */
  readonly kernelMs: number;
  /** Of `kernelMs`, the time of kernels that ran on one thread (undefined: no thread pool, T = 1). */
  readonly oneThreadMs?: number;
  readonly byOp: readonly OpTime[];
  readonly byClass: readonly ClassTime[];
  /** Every node, slowest first. */
  readonly nodes: readonly NodeTime[];
}

const kernelName = (e: TraceEvent) => e.name.slice(0, -"_kernel_time".length);

/** The op-type and node profile of the last `runs` runs of a trace. */
export const opProfile = (events: readonly NodeEvent[], runs: number): OpProfile => {
  const modelRuns = events.filter((e) => e.cat === "Session" && e.name === "model_run").slice(-runs);
  const samples = new Map<
    string,
    { op: string; ms: number[]; flops?: ReturnType<typeof nodeFlops>; parallel?: boolean }
  >();
  for (const r of modelRuns) {
    const end = r.ts + (r.dur ?? 0);
    for (const e of events) {
      if (e.cat !== "Node" || !e.name.endsWith("_kernel_time") || e.ts < r.ts || e.ts >= end) continue;
      const name = kernelName(e), op = e.args?.op_name ?? "?";
      const s = samples.get(name) ??
        {
          op,
          ms: [],
          flops: nodeFlops(op, shapes(e.args?.input_type_shape), shapes(e.args?.output_type_shape)),
        };
      s.ms.push((e.dur ?? 0) / 1000);
      const split = splitWork(e);
      if (split !== undefined) s.parallel = (s.parallel ?? false) || split;
      samples.set(name, s);
    }
  }
  const nodes: NodeTime[] = [...samples].map(([name, s]) => ({
    name,
    op: s.op,
    ms: summarize(s.ms).median,
    ...(s.flops ? { flops: s.flops.flops, kind: s.flops.kind } : {}),
    ...(s.parallel !== undefined ? { parallel: s.parallel } : {}),
  })).sort((a, b) => b.ms - a.ms);
  const pooled = nodes.some((n) => n.parallel !== undefined);
  const oneThread = (n: NodeTime) => (n.parallel === false ? n.ms : 0);
  const byOp = new Map<string, OpTime>();
  const byClass = new Map<string, ClassTime>();
  for (const n of nodes) {
    const o = byOp.get(n.op) ?? { op: n.op, nodes: 0, ms: 0, ...(pooled ? { oneThreadMs: 0 } : {}) };
    byOp.set(n.op, {
      op: n.op,
      nodes: o.nodes + 1,
      ms: o.ms + n.ms,
      ...(pooled ? { oneThreadMs: (o.oneThreadMs ?? 0) + oneThread(n) } : {}),
    });
    if (n.kind) {
      const backward = n.name.startsWith("backward:"), key = `${n.kind}/${backward}`;
      const c = byClass.get(key) ?? { kind: n.kind, backward, nodes: 0, ms: 0, flops: 0 };
      byClass.set(key, { ...c, nodes: c.nodes + 1, ms: c.ms + n.ms, flops: c.flops + (n.flops ?? 0) });
    }
  }
  return {
    runs: modelRuns.length,
    runMs: summarize(modelRuns.map((r) => (r.dur ?? 0) / 1000)).median,
    kernelMs: nodes.reduce((s, n) => s + n.ms, 0),
    ...(pooled ? { oneThreadMs: nodes.reduce((s, n) => s + oneThread(n), 0) } : {}),
    byOp: [...byOp.values()].sort((a, b) => b.ms - a.ms),
    byClass: [...byClass.values()].sort((a, b) => b.ms - a.ms),
    nodes,
  };
};

const CLASS_LABEL: Record<KernelClass, string> = {
  matmul: "MatMul, FusedMatMul, Gemm",
  conv: "dense Conv / ConvTranspose",
  depthwise: "depthwise Conv / ConvTranspose",
};

/**
 * The profile as Markdown: op types (the `topOps` largest, the rest summed), the compute kernels'
 * GFLOP/s against `peak` (ORT's MatMul GFLOP/s at the same T), and the `topNodes` slowest nodes.
 */
export const renderOpProfile = (p: OpProfile, peak: number, topOps = 14, topNodes = 12): string => {
  const share = (ms: number) => pct(ms / p.kernelMs);
  const head = p.byOp.slice(0, topOps), rest = p.byOp.slice(topOps);
  const opRows = [
    ...head,
    ...(rest.length
      ? [{
        op: `${rest.length} other op types`,
        nodes: rest.reduce((s, o) => s + o.nodes, 0),
        ms: rest.reduce((s, o) => s + o.ms, 0),
        ...(p.oneThreadMs !== undefined
          ? { oneThreadMs: rest.reduce((s, o) => s + (o.oneThreadMs ?? 0), 0) }
          : {}),
      }]
      : []),
  ];
  const pooled = p.oneThreadMs !== undefined;
  const gfs = (flops: number, ms: number) => flops / (ms * 1e6);
  return [
    table<OpTime>([
      { header: "op type", cell: (o) => o.op },
      { header: "nodes", cell: (o) => String(o.nodes) },
      { header: "ms", cell: (o) => formatMs(o.ms) },
      { header: "share of kernel time", cell: (o) => share(o.ms) },
      ...(pooled ? [{ header: "on one thread", cell: (o: OpTime) => pct((o.oneThreadMs ?? 0) / o.ms) }] : []),
    ], opRows),
    ...(pooled
      ? [
        "",
        `Kernels that ran on one thread (never split their work over the intra-op pool): ${
          formatMs(p.oneThreadMs!)
        } ms, ${share(p.oneThreadMs!)} of the kernel time.`,
      ]
      : []),
    "",
    table<ClassTime>([
      {
        header: "compute kernels",
        cell: (c) => `${CLASS_LABEL[c.kind]}, ${c.backward ? "backward" : "forward"}`,
      },
      { header: "nodes", cell: (c) => String(c.nodes) },
      { header: "ms", cell: (c) => formatMs(c.ms) },
      { header: "share", cell: (c) => share(c.ms) },
      { header: "GFLOP", cell: (c) => fixed(c.flops / 1e9, 2) },
      { header: "GFLOP/s", cell: (c) => fixed(gfs(c.flops, c.ms), 1) },
      { header: "÷ MatMul peak", cell: (c) => pct(gfs(c.flops, c.ms) / peak) },
    ], p.byClass),
    "",
    table<NodeTime>([
      { header: "node", cell: (n) => `\`${n.name}\`` },
      { header: "op", cell: (n) => n.op },
      { header: "ms", cell: (n) => formatMs(n.ms) },
      { header: "share", cell: (n) => share(n.ms) },
      { header: "GFLOP/s", cell: (n) => (n.flops ? fixed(gfs(n.flops, n.ms), 1) : "–") },
      ...(pooled ? [{ header: "threads", cell: (n: NodeTime) => (n.parallel ? "pool" : "one") }] : []),
    ], p.nodes.slice(0, topNodes)),
  ].join("\n");
};
